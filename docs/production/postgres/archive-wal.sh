#!/bin/sh
# PostgreSQL archive_command (docs/production/README.md, "Backups and point-in-time recovery"): copies one finished
# WAL segment to the archive volume, never overwriting a segment already archived (a different file with the same
# name means two servers archive to one place: fail loudly). Replace with pgBackRest or WAL-G to ship to object
# storage in another failure domain.
set -eu
src="$1"
name="$2"
dir="${WAL_ARCHIVE_DIR:-/var/lib/postgresql/wal-archive}"
dest="$dir/$name"
mkdir -p "$dir"
if [ -f "$dest" ]; then
  cmp -s "$src" "$dest" && exit 0
  echo "archive-wal: $dest exists and differs" >&2
  exit 1
fi
cp "$src" "$dest.tmp"
sync "$dest.tmp" 2>/dev/null || true
mv "$dest.tmp" "$dest"
