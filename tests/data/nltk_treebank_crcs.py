#!/usr/bin/env python3
"""Writes the CRC-32 of NLTK's Treebank tokens for each review of a JSONL(.gz) file.

Usage: tests/data/nltk_treebank_crcs.py data/imdb-sample/test.jsonl.gz \
           > tests/data/imdb-sample-test.treebank-crc32.txt

One line per review: the CRC-32 (zlib's, hex) of its tokens joined by NUL bytes (UTF-8).
The tokens are `nltk.tokenize.TreebankWordTokenizer` output with the two documented
differences of the runtime's word splitter applied first: `<br />` is whitespace, and the
text is cut into sentences after words ending in a period (outside the listed titles and
letter-dot abbreviations), as `nltk.word_tokenize` would with its sentence splitter.
Tested with NLTK 3.10.4.
"""
import gzip
import json
import re
import sys
import zlib

from nltk.tokenize import TreebankWordTokenizer

TITLES = {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs"}
TREEBANK = TreebankWordTokenizer()


def letter_abbreviation(word):
    return (
        len(word) >= 3
        and len(word) % 2 == 1
        and all(
            (c.isascii() and c.isalpha()) if i % 2 == 0 else c == "."
            for i, c in enumerate(word)
        )
    )


def ends_sentence(chunk):
    text = chunk.rstrip("]})>\"'")
    if not text.endswith(".") or text.endswith(".."):
        return False
    before = text[:-1]
    word = re.search(r"[A-Za-z0-9.\x80-\U0010ffff]*$", before).group(0)
    return not (word.lower() in TITLES or letter_abbreviation(word))


def tokens(text):
    chunks = re.sub(r"<br\s*/?>", " ", text, flags=re.I).split()
    out, sentence = [], []
    for chunk in chunks:
        sentence.append(chunk)
        if ends_sentence(chunk):
            out += TREEBANK.tokenize(" ".join(sentence))
            sentence = []
    if sentence:
        out += TREEBANK.tokenize(" ".join(sentence))
    return out


def main(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            joined = "\0".join(tokens(json.loads(line)["text"])).encode("utf-8")
            print(f"{zlib.crc32(joined):08x}")


if __name__ == "__main__":
    main(sys.argv[1])
