package dev.honeyphone.contract;

import android.content.BroadcastReceiver;
import android.content.Context;
import android.content.Intent;

/** Also schedule from BOOT_COMPLETED, in case the persistent process started before it. */
public class BootReceiver extends BroadcastReceiver {
    @Override
    public void onReceive(Context context, Intent intent) {
        ContractApp.schedule(context.getApplicationContext());
    }
}
