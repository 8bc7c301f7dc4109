import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8123))
s.listen(16)
while True:
    c, _ = s.accept()
    while c.recv(65536):
        pass
    c.close()
