"""Folded stacks from `perf script`, and inclusive shares read from them.

    perf script -F comm,tid,ip,sym | python3 profile_query.py --fold > folded.txt
    python3 profile_query.py folded.txt [under-regex] [depth] [rows]

With no regex (or ''), every function's inclusive share of all samples. With a regex, only
the samples whose stack holds a frame matching it, and the functions up to `depth` frames
below the first such frame (0: all of them), as shares of all samples.
"""
import collections
import re
import sys


def fold(lines):
    stacks, cur = collections.Counter(), []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if cur:
                stacks[";".join(reversed(cur))] += 1
            cur = []
            continue
        if line.startswith((" ", "\t")):
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                sym = re.sub(r"\+0x[0-9a-f]+$", "", parts[1])
                cur.append(re.sub(r" \(.*\)$", "", sym))
    if cur:
        stacks[";".join(reversed(cur))] += 1
    for s, c in stacks.items():
        print(s, c)


def query(path, under, depth, rows):
    data = []
    with open(path) as f:
        for line in f:
            s, c = line.rsplit(" ", 1)
            data.append((s.split(";"), int(c)))
    total = sum(c for _, c in data) or 1
    pat = re.compile(under) if under else None
    inc, sub = collections.Counter(), 0
    for stack, c in data:
        if pat:
            i = next((i for i, f in enumerate(stack) if pat.search(f)), None)
            if i is None:
                continue
            sub += c
            below = stack[i + 1:] if depth == 0 else stack[i + 1:i + 1 + depth]
        else:
            below = stack
        for f in set(below):
            inc[f] += c
    head = f"{total} samples"
    if pat:
        head += f"; under {under}: {sub} ({100 * sub / total:.1f}%)"
    print(head)
    for f, c in inc.most_common(rows):
        print(f"{100 * c / total:6.2f}%  {f[:160]}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fold"]:
        fold(sys.stdin)
    else:
        query(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "",
              int(sys.argv[3]) if len(sys.argv) > 3 else 0,
              int(sys.argv[4]) if len(sys.argv) > 4 else 40)
