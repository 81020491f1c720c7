#!/bin/sh
exec /usr/local/bin/challenge-verify --server 127.0.0.1:50051 --deadline 5s --log-file /var/log/scepca/challenge-verify.log "$@"
