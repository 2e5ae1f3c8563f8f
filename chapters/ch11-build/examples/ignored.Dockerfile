FROM busybox
COPY secret.txt /
