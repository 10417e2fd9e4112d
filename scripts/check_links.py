#!/usr/bin/env python3
"""Checks every internal link of the book and the README.

    python3 scripts/check_links.py

A link `[text](target)` whose target is not a URL must name a file that
exists (relative to the page), and an anchor (`page.md#section`, `#section`)
must name a heading of that page, slugged as mdBook and GitHub slug them.
Inside the book, a link may not leave `docs/book/src`: the built book would
not have the file. Prints one line per broken link and exits 1 if any.
"""
import os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOK = os.path.join(ROOT, "docs", "book", "src")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path, cache={}):
    if path not in cache:
        text = open(path, encoding="utf-8").read()
        text = re.sub(r"```.*?```", "", text, flags=re.S)
        cache[path] = {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, flags=re.M)}
    return cache[path]


def pages():
    yield os.path.join(ROOT, "README.md")
    for d, _, files in os.walk(BOOK):
        for f in files:
            if f.endswith(".md"):
                yield os.path.join(d, f)


def main():
    bad = []
    for page in pages():
        text = open(page, encoding="utf-8").read()
        text = re.sub(r"```.*?```", "", text, flags=re.S)
        for m in LINK.finditer(text):
            target = m.group(1)
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            full = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
            where = os.path.relpath(page, ROOT)
            if not os.path.exists(full):
                bad.append(f"{where}: {target}: no such file")
                continue
            if page.startswith(BOOK) and not full.startswith(BOOK):
                bad.append(f"{where}: {target}: leaves the book (docs/book/src)")
                continue
            if anchor and full.endswith(".md") and anchor not in anchors(full):
                bad.append(f"{where}: {target}: no heading #{anchor}")
    for b in bad:
        print(b)
    print(f"{len(bad)} broken links" if bad else "every internal link resolves")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
