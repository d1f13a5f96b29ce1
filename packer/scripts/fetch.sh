#!/usr/bin/env bash
# fetch.sh NAME DEST: download a pinned input from downloads.lock, resuming a partial file
# (curl -C -) and verifying its sha256; a mismatch deletes the file and fails.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
name=$1
dest=$2
read -r url sha size < <(awk -v n="$name" '$1 == n { print $2, $3, $4 }' "$here/downloads.lock")
[ -n "${url:-}" ] || { echo "fetch.sh: $name is not in downloads.lock" >&2; exit 2; }
[ "$sha" != "-" ] || { echo "fetch.sh: $name has no pinned sha256 in downloads.lock" >&2; exit 2; }
if [ -f "$dest" ] && echo "$sha  $dest" | sha256sum -c --status; then
    exit 0
fi
mkdir -p "$(dirname "$dest")"
if [ -n "${size:-}" ]; then
    free=$(df --output=avail -B1 "$(dirname "$dest")" | tail -n1)
    [ "$free" -gt "$size" ] || { echo "fetch.sh: not enough space for $name" >&2; exit 1; }
fi
curl --fail --location --retry 5 --retry-delay 10 --continue-at - --output "$dest.part" "$url"
if ! echo "$sha  $dest.part" | sha256sum -c --status; then
    rm -f "$dest.part"
    echo "fetch.sh: sha256 mismatch for $name" >&2
    exit 1
fi
mv "$dest.part" "$dest"
