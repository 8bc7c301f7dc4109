"""Device-side runtime of the Honeyphone device twin.

Runs inside the twin container on Debian's python3, standard library only.
It makes a Debian container look, over ADB, like a rooted Android device:
an adbd, ``getprop``/``setprop``, ``content`` over AOSP-schema SQLite, init.
"""
