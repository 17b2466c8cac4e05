#!/bin/sh
# What memd's heap gained between two moments of a soak, by allocation site (heaptrack).
#
# Usage:
#   cargo build --release -p memd --bin memd
#   cargo build --release -p mem-e2e --bin soak --bin fake_freqtrade
#   tools/heap_growth.sh run /tmp/ht -- target/release/soak --minutes 20 [--freqtrade PATH]
#   tools/heap_growth.sh diff /tmp/ht 300 1195     # seconds since memd started
#
# `run` starts the soak with memd (target/release/memd, or $MEMD) under heaptrack's
# preload library, writing heaptrack's raw record to DIR/memd.raw; exec keeps memd's pid,
# so the soak measures memd itself. `diff` cuts that record at the two times, lets
# heaptrack interpret both, and prints, per call stack, the bytes allocated before the
# later time and not freed by then, minus the same at the earlier time ("leaked" in
# heaptrack's words: here, the heap memd gained in between).
set -eu
cmd=${1:?run or diff}
dir=${2:?directory for heaptrack files}
shift 2
preload=/usr/lib/heaptrack/libheaptrack_preload.so
interpret=/usr/lib/heaptrack/libexec/heaptrack_interpret
case $cmd in
run)
    [ "${1:-}" = "--" ] && shift
    mkdir -p "$dir"
    memd=${MEMD:-$(pwd)/target/release/memd}
    cat >"$dir/memd" <<EOF
#!/bin/sh
export LD_PRELOAD=$preload
export DUMP_HEAPTRACK_OUTPUT=$dir/memd.raw
exec $memd "\$@"
EOF
    chmod +x "$dir/memd"
    exec "$@" --memd "$dir/memd"
    ;;
diff)
    early_ms=$((${1:?early seconds} * 1000))
    late_ms=$((${2:?late seconds} * 1000))
    # The raw record's `c <hex ms>` lines are its clock; everything before a cut is what
    # had happened by then.
    for pair in "early $early_ms" "late $late_ms"; do
        set -- $pair
        python3 -c '
import sys
cut = int(sys.argv[1])
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    if line.startswith(b"c ") and int(line[2:], 16) >= cut:
        break
    out.write(line)
' "$2" <"$dir/memd.raw" | "$interpret" | gzip -c >"$dir/$1.gz"
    done
    heaptrack_print -f "$dir/late.gz" -d "$dir/early.gz" -l 1 -p 0 -a 0 -T 0 -n 30 -s 6
    ;;
*)
    echo "usage: $0 run DIR -- SOAK-COMMAND... | $0 diff DIR EARLY_SECS LATE_SECS" >&2
    exit 2
    ;;
esac
