#!/bin/sh
echo "$GREETING WORLD $1 from $(pwd) as $(id -u)"
