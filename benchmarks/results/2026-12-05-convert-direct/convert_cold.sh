#!/bin/bash
# cold cp (read + write + fsync of the same bytes) against cold seisseg convert, alternating
IN=$1; BIN=$2; ROUNDS=${3:-3}
for r in $(seq 1 $ROUNDS); do
  rm -f /tmp/s23/cp.h5 /tmp/s23/conv.h5; sync; echo 3 > /proc/sys/vm/drop_caches
  t0=$(date +%s.%N); cat $IN > /dev/null; t1=$(date +%s.%N)
  sync; echo 3 > /proc/sys/vm/drop_caches
  t2=$(date +%s.%N); cp $IN /tmp/s23/cp.h5 && sync /tmp/s23/cp.h5; t3=$(date +%s.%N)
  rm -f /tmp/s23/cp.h5; sync; echo 3 > /proc/sys/vm/drop_caches
  t4=$(date +%s.%N); /usr/bin/time -f "maxrss_kb=%M user=%U sys=%S" $BIN convert $IN --out /tmp/s23/conv.h5 >/tmp/s23/conv.out 2>/tmp/s23/conv.err; rc=$?; t5=$(date +%s.%N)
  bytes=$(stat -c %s $IN)
  python3 -c "
b=$bytes; cp=$t3-$t2; cv=$t5-$t4; raw=$t1-$t0
print(f'round $r: raw read (cat) {b/raw/1e9:.2f} GB/s | cp+sync {b/cp/1e9:.2f} GB/s ({cp:.1f} s) | convert rc=$rc {b/cv/1e9:.2f} GB/s ({cv:.1f} s) | convert/cp {cp/cv:.2f}')"
  tail -1 /tmp/s23/conv.err
done
