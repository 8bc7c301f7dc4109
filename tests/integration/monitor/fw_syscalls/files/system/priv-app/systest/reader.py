import socket, sqlite3, time
time.sleep(600)  # let the listener come up (device time)
db = sqlite3.connect("file:/data/data/com.android.providers.contacts/databases/contacts2.db?mode=ro", uri=True)
rows = db.execute("select data1 from data").fetchall()
time.sleep(3600)
s = socket.create_connection(("127.0.0.1", 8123))
s.sendall(b"X" * 4321)
s.close()
print("sent", len(rows), flush=True)
