#!/usr/bin/env bash
# `make local-image`: makes sure `sam local` has a provided.al2023 image for this machine's
# architecture. Where the image is already here, or can be pulled, nothing is made and SAM uses
# AWS's own. Where no registry answers (air-gapped hosts, CI runners like medic's), it makes a
# stand-in with `docker import` (about 15 MB, under a second): the host's glibc, libgcc_s, CA
# certificates (the SDK's TLS reads them at init), a static busybox as /bin/sh, and the Runtime
# Interface Emulator that ships inside the aws-sam-cli package, tagged under the two names SAM
# looks for. The stand-in runs the bootstraps built on this host (a glibc at least as new as the
# one they link), so it is for local invokes only, never for `sam build --use-container`.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${VENV:-$here/.venv}"

case "$(uname -m)" in
  x86_64) arch=x86_64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "local-image: no Lambda architecture for $(uname -m)" >&2; exit 1 ;;
esac
base="public.ecr.aws/lambda/provided:al2023-$arch"
rapid="public.ecr.aws/lambda/provided:al2023-rapid-$arch"
label="medic.stand-in"

docker info >/dev/null 2>&1 || { echo "local-image: Docker is not running (sam local needs it)" >&2; exit 1; }
if docker image inspect "$rapid" >/dev/null 2>&1; then
  if [[ "$(docker image inspect -f '{{json .Config.Labels}}' "$rapid")" == *"$label"* ]]; then kind="the stand-in"; else kind="AWS's image"; fi
  echo "local-image: $rapid is here ($kind)"
  exit 0
fi
if docker image inspect "$base" >/dev/null 2>&1 || timeout "${MEDIC_PULL_TIMEOUT:-60}" docker pull -q "$base" >/dev/null 2>&1; then
  echo "local-image: $base is here; sam local builds its own $rapid from it"
  exit 0
fi
echo "local-image: $base cannot be pulled; making a stand-in"

rie="$("$venv/bin/python" -c 'import pathlib, samcli; print(pathlib.Path(samcli.__file__).parent / "local/rapid")')/aws-lambda-rie-$arch"
[ -f "$rie" ] || { echo "local-image: $rie is missing (make venv installs aws-sam-cli)" >&2; exit 1; }
busybox=/bin/busybox
if [[ "$(dpkg-query -W -f '${Status}' busybox-static 2>/dev/null)" != *"install ok installed"* ]]; then
  echo "local-image: installing Debian's busybox-static (a static /bin/sh for the image)"
  apt-get install -y -qq busybox-static >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq busybox-static >/dev/null; }
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,etc/ssl/certs,lib,var/rapid,var/task,var/runtime,opt,tmp}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$rie" "$root/var/rapid/aws-lambda-rie"
chmod 755 "$root/var/rapid/aws-lambda-rie"
# What a Rust bootstrap on glibc loads: the loader, libc and the libraries Rust's std links.
# awk reads the whole cache listing: leaving at the first match would end ldconfig with SIGPIPE
# once the listing outgrows the pipe, and pipefail would end this script (exit 141).
libraries="$(/sbin/ldconfig -p)"
for lib in libc.so.6 libm.so.6 libgcc_s.so.1 libpthread.so.0 libdl.so.2 librt.so.1 libutil.so.1 libresolv.so.2 libnss_dns.so.2 libnss_files.so.2; do
  path="$(awk -v lib="$lib" '$1 == lib && $0 ~ /x86-64|AArch64|aarch64/ && !found { print $NF; found = 1 }' <<<"$libraries")"
  [ -n "$path" ] && cp -L "$path" "$root/lib/$lib"
done
loader="$(awk '$1 ~ /^ld-linux/ && !found { print $NF; found = 1 }' <<<"$libraries")"
mkdir -p "$root$(dirname "$loader")"
cp -L "$loader" "$root$loader"
[ "$(dirname "$loader")" = /lib ] || ln -s "$loader" "$root/lib/$(basename "$loader")"
ln -s lib "$root/lib64" 2>/dev/null || true
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
printf 'root:x:0:0:root:/root:/bin/sh\nsbx_user1051:x:993:990::/home/sbx_user1051:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin LD_LIBRARY_PATH=/lib:/var/lang/lib:/opt/lib LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime LANG=en_US.UTF-8 TZ=:UTC' \
  --change 'WORKDIR /var/task' \
  --change 'ENTRYPOINT ["/var/rapid/aws-lambda-rie"]' \
  --change "LABEL $label=\"stand-in made by scripts/local-image.sh from this host's glibc\"" \
  - "$base" >/dev/null
docker tag "$base" "$rapid"
echo "local-image: made $rapid ($(docker image inspect -f '{{.Size}}' "$rapid") B)"
