#!/bin/sh
# Runs inside the guest. Records the role and lets the application reach PostgreSQL over TCP.
set -eu
echo engine > /etc/ost-images-role
conf=$(ls /etc/postgresql/*/main/postgresql.conf)
sed -i "s/^#listen_addresses = .*/listen_addresses = '*'/" "$conf"
systemctl enable postgresql.service
