#!/usr/bin/env bash
# fetch.sh NAME DIR: download a pinned input from downloads.lock into DIR (under the URL's file
# name), resuming a partial file (curl -C -) and verifying its sha256; a mismatch deletes the
# file and fails. SLM_MIRROR=URL fetches every input from URL/<file name> instead (an internal
# mirror, an air-gapped build): the same resume and the same sha256 check. Prints the path.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
name=$1
dir=$2
read -r url sha size < <(awk -v n="$name" '$1 == n { print $2, $3, $4 }' "$here/downloads.lock")
[ -n "${url:-}" ] || { echo "fetch.sh: $name is not in downloads.lock" >&2; exit 2; }
[ "$sha" != "-" ] || { echo "fetch.sh: $name has no pinned sha256 in downloads.lock" >&2; exit 2; }
file=${url##*/}
file=${file#mirror:}
dest="$dir/$file"
if [ -n "${SLM_MIRROR:-}" ]; then
    url="${SLM_MIRROR%/}/$file"
elif [[ "$url" == mirror:* ]]; then
    echo "fetch.sh: $name has no public URL; set SLM_MIRROR to a server holding $file" >&2
    exit 2
fi
if [ -f "$dest" ] && echo "$sha  $dest" | sha256sum -c --status; then
    echo "$dest"
    exit 0
fi
mkdir -p "$dir"
if [ -n "${size:-}" ]; then
    free=$(df --output=avail -B1 "$dir" | tail -n1)
    [ "$free" -gt "$size" ] || { echo "fetch.sh: not enough space for $name" >&2; exit 1; }
fi
curl --fail --silent --show-error --location --retry 5 --retry-delay 10 --continue-at - \
    --output "$dest.part" "$url"
if ! echo "$sha  $dest.part" | sha256sum -c --status; then
    rm -f "$dest.part"
    echo "fetch.sh: sha256 mismatch for $name" >&2
    exit 1
fi
mv "$dest.part" "$dest"
echo "$dest"
