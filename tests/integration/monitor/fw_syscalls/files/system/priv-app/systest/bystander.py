import socket, time
time.sleep(1200)
s = socket.create_connection(("127.0.0.1", 8123))
s.sendall(b"Y" * 1234)
s.close()
