"""The map of the source (docs/internals/layout.md) and the README's layout block match the tree:
every source file under src/ is named in the map, and every path the map or the README names
exists (issue 10: a newcomer can point at the one place each concern lives)."""

import os
import re
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MAP = os.path.join(ROOT, "docs", "internals", "layout.md")


def source_files():
    out = set()
    for d, _, files in os.walk(os.path.join(ROOT, "src")):
        for f in files:
            if f.endswith((".c", ".h")):
                out.add(os.path.relpath(os.path.join(d, f), ROOT))
    return out


def named_in_map():
    """Paths named in the map: `src/dir/file.c`, or a bare `file.c` under the latest `src/dir/` heading."""
    names, folder = set(), None
    with open(MAP, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^#+\s+`?(src/[a-z_]+/)`?", line)
            if m:
                folder = m.group(1)
                continue
            for tok in re.findall(r"`([A-Za-z0-9_./-]+\.[ch])`", line):
                if tok.startswith("src/"):
                    names.add(tok)
                elif "/" not in tok and folder:
                    names.add(folder + tok)
    return names


class Layout(unittest.TestCase):
    def test_every_source_file_is_on_the_map(self):
        missing = sorted(source_files() - named_in_map())
        self.assertEqual(missing, [], "source files the map does not name (docs/internals/layout.md)")

    def test_every_file_on_the_map_exists(self):
        ghosts = sorted(p for p in named_in_map() if not os.path.exists(os.path.join(ROOT, p)))
        self.assertEqual(ghosts, [], "files the map names that are not in the tree")

    def test_readme_layout_block_names_real_folders(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            text = f.read()
        block = text.split("## Layout", 1)[1].split("```")[1]
        folders = re.findall(r"^([A-Za-z0-9_./-]+/)\s", block, re.M)
        self.assertTrue(len(folders) >= 5, block)
        for d in folders:
            self.assertTrue(os.path.isdir(os.path.join(ROOT, d)), f"README names {d}, not in the tree")
        for d in sorted(os.listdir(os.path.join(ROOT, "src"))):
            if os.path.isdir(os.path.join(ROOT, "src", d)):
                self.assertIn(f"src/{d}/", folders, f"README's layout does not name src/{d}/")


if __name__ == "__main__":
    unittest.main()
