#!/usr/bin/env bash
# The man pages, into OUT/man1 and OUT/man5: each binary's from its own clap definition
# (`<binary> --generate-man DIR`: dpvs, dpvsctl and one page per subcommand, ipvsadm,
# dpvs-gen, dpvs-exporter, dpvs-health), dpip's as written (dist/man/dpip.1: its parser is not clap), and
# dpvs.toml(5) with the annotated embedded configuration (conf/samples/tap-fnat.toml).
# Usage: scripts/man.sh OUT [BIN]   (BIN: the binaries' directory, default target/release)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/man.sh OUT [BIN]}
BIN=${2:-target/release}
mkdir -p "$OUT/man1" "$OUT/man5"
for b in dpvs dpvsctl ipvsadm dpvs-gen dpvs-exporter dpvs-health; do
    "$BIN/$b" --generate-man "$OUT/man1"
done
cp dist/man/dpip.1 "$OUT/man1/"
# The sample as roff text: backslashes escaped, no line taken for a request.
python3 - dist/man/dpvs.toml.5.in conf/samples/tap-fnat.toml > "$OUT/man5/dpvs.toml.5" <<'PY'
import sys
page, sample = (open(p).read() for p in sys.argv[1:3])
body = "\n".join("\\&" + l.replace("\\", "\\e") for l in sample.rstrip("\n").split("\n"))
sys.stdout.write(page.replace("@SAMPLE@", body))
PY
echo "man pages: $(find "$OUT" -name '*.[15]' | wc -l) in $OUT"
