#!/bin/bash
# One measurement session for the prototypes in this folder: the clean checkout, then
# each prototype applied in turn (and removed again), every search timed in alternation.
# Run from the repository's root, in an environment where this checkout is installed in
# editable mode (`pip install -e '.[test]'`), with a clean working tree under phaze/:
#   bash bench/prototypes/measure.sh
# Each line: which code, which search, wall seconds, rows, layer schedules computed,
# designs evaluated (paper-space cases) and the frontier's digest.
set -euo pipefail
if ! git diff --quiet -- phaze; then
    echo "phaze/ has uncommitted changes; commit or stash them first" >&2
    exit 1
fi
case_line() {  # case label [environment]
    env ${3:-} python bench/bench_search_speed.py "$1" 2>/dev/null | tail -1 | python -c "
import json, sys
r = json.loads(sys.stdin.read())
r = r.get('joint', r)
c = r['counters']
print('$2', '$1', r['wall_s'], 's; rows', r['rows'], '; schedules',
      c['layer_schedules'], '; designs',
      c['designs_evaluated'], '; frontier', r['frontier_sha'])"
}
large_line() {  # jobs label [environment]
    env ${3:-} python bench/bench_large_space.py --jobs "$1" 2>/dev/null | tail -1 | python -c "
import ast, sys
r = ast.literal_eval(sys.stdin.read())
print('$2', 'large, jobs=$1', round(r['search_wall_s'], 2), 's; rows', r['rows'],
      '; schedules', r['layer_schedules'],
      '; frontier', r['frontier_digest'], '; peak', r['peak_rss_bytes'] >> 20, 'MiB')"
}
remove() {
    git checkout -q -- phaze
    rm -f phaze/joint/split.py
}
trap remove EXIT
for _ in 1 2; do case_line gpt3 main; case_line gpt3-jobs2 main; done
large_line 1 main
large_line 2 main
case_line joint4 main
case_line joint4-jobs2 main
for p in regions-provisional-floor regions-bands split-at-meeting; do
    git apply "bench/prototypes/$p.diff"
    for _ in 1 2; do case_line gpt3 "$p"; case_line gpt3-jobs2 "$p"; done
    large_line 2 "$p"
    case_line joint4-jobs2 "$p"
    if [ "$p" = split-at-meeting ]; then
        case_line gpt3-jobs2 "$p(CHUNK=0.5)" CHUNK=0.5
        large_line 2 "$p(CHUNK=0.5)" CHUNK=0.5
        case_line joint4-jobs2 "$p(CHUNK=0.5)" CHUNK=0.5
    fi
    remove
done
large_line 1 main
