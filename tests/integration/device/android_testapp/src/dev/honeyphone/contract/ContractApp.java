package dev.honeyphone.contract;

import android.app.AlarmManager;
import android.app.Application;
import android.app.PendingIntent;
import android.content.Context;
import android.content.Intent;
import android.content.SharedPreferences;
import android.util.Log;

import java.io.File;
import java.io.FileOutputStream;

/** Schedules, once, an RTC_WAKEUP alarm 72 hours of wall-clock time ahead. */
public class ContractApp extends Application {
    static final String TAG = "HoneyphoneContract";
    static final long DELAY_MS = 72L * 3600L * 1000L;

    @Override
    public void onCreate() {
        super.onCreate();
        schedule(this);
    }

    static synchronized void schedule(Context context) {
        SharedPreferences prefs = context.getSharedPreferences("contract", Context.MODE_PRIVATE);
        if (prefs.contains("t0")) {
            return;
        }
        long t0 = System.currentTimeMillis();
        prefs.edit().putLong("t0", t0).commit();
        Intent intent = new Intent(context, AlarmReceiver.class);
        PendingIntent pi = PendingIntent.getBroadcast(context, 0, intent, PendingIntent.FLAG_IMMUTABLE);
        AlarmManager am = (AlarmManager) context.getSystemService(Context.ALARM_SERVICE);
        am.setExact(AlarmManager.RTC_WAKEUP, t0 + DELAY_MS, pi);
        write(context, "scheduled.txt", t0 + " " + (t0 + DELAY_MS) + "\n");
        Log.i(TAG, "HONEYPHONE_ALARM_SCHEDULED t0=" + t0 + " due=" + (t0 + DELAY_MS));
    }

    static void write(Context context, String name, String text) {
        try (FileOutputStream out = new FileOutputStream(new File(context.getFilesDir(), name))) {
            out.write(text.getBytes("UTF-8"));
        } catch (Exception e) {
            Log.e(TAG, "cannot write " + name, e);
        }
    }
}
