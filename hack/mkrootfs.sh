#!/bin/sh
# Builds a minimal busybox rootfs in DIR from Debian's busybox-static (installed if missing):
# the static binary, one symlink per applet, and /etc/passwd and /etc/group with root and nobody.
set -eu
dir=${1:?usage: hack/mkrootfs.sh DIR}
busybox=/bin/busybox
if ! [ -x "$busybox" ] || ! "$busybox" --list >/dev/null 2>&1 || ldd "$busybox" >/dev/null 2>&1; then
    if ! dpkg -s busybox-static >/dev/null 2>&1; then
        apt-get install -y -qq busybox-static >/dev/null || { apt-get update -qq && apt-get install -y -qq busybox-static >/dev/null; }
    fi
fi
mkdir -p "$dir/bin" "$dir/sbin" "$dir/usr/bin" "$dir/usr/sbin" "$dir/etc" "$dir/proc" "$dir/sys" \
    "$dir/dev" "$dir/tmp" "$dir/root" "$dir/var/www" "$dir/home"
chmod 1777 "$dir/tmp"
cp "$busybox" "$dir/bin/busybox"
for applet in $("$busybox" --list-full); do
    case "$applet" in bin/busybox) continue ;; esac
    [ -e "$dir/$applet" ] || ln -s /bin/busybox "$dir/$applet"
done
cat > "$dir/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$dir/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
echo "hull" > "$dir/etc/hostname"
: > "$dir/etc/resolv.conf"
: > "$dir/etc/hosts"
