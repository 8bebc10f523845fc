#!/usr/bin/env python3
"""Golden IFEval verdicts computed with Python's own str / re / json (stdlib only).

The checkers below re-create google-research instruction_following_eval/instructions.py
(newest revision) for the 19 instruction ids whose verdict needs nothing but the standard
library, following the written spec in the shared reference ifeval-checkers.md §2 and §5. The
regexes are the reference's patterns, evaluated by Python's `re`, and json_format uses Python's
`json.loads`, so these verdicts are independent of quench's hand-coded C++ scanners. The ids that
need nltk or langdetect (number_sentences, capital_word_frequency, english_capital,
english_lowercase, response_language) are skipped.

Responses: for each IFEval prompt, a few deterministic variants derived from the prompt text
(as is; upper case; lower case; quoted; with a P.S.; as '***' paragraphs; as bullets; as a
JSON string; as a <<title>> with sections; as two responses), cut to 400 characters.

Usage: python3 make_ifeval_goldens.py INPUT_DATA_JSONL OUT_JSONL   (Python 3.11)
"""
import json
import random
import re
import sys


def rel(relation, count, n):
    if relation == "less than":
        return count < n
    if relation == "at least":
        return count >= n
    raise ValueError(relation)


def check(iid, kw, value):
    if iid == "keywords:existence":
        return all(re.search(k, value, flags=re.IGNORECASE) for k in kw["keywords"])
    if iid == "keywords:frequency":
        return rel(kw["relation"], len(re.findall(kw["keyword"].strip(), value, flags=re.IGNORECASE)), kw["frequency"])
    if iid == "keywords:forbidden_words":
        return not any(re.search(r"\b" + w + r"\b", value, flags=re.IGNORECASE) for w in kw["forbidden_words"])
    if iid == "keywords:letter_frequency":
        letter = kw["letter"].strip().lower()
        count = sum(1 for c in value.lower() if c == letter)
        return count < kw["let_frequency"] if kw["let_relation"] == "less than" else count >= kw["let_frequency"]
    if iid == "length_constraints:number_paragraphs":
        ps = re.split(r"\s?\*\*\*\s?", value)
        n = len(ps)
        for i, p in enumerate(ps):
            if not p.strip():
                if i == 0 or i == len(ps) - 1:
                    n -= 1
                else:
                    return False
        return n == kw["num_paragraphs"]
    if iid == "length_constraints:number_words":
        return rel(kw["relation"], len(re.findall(r"\w+", value)), kw["num_words"])
    if iid == "length_constraints:nth_paragraph_first_word":
        ps = re.split(r"\n\n", value)
        n = len(ps) - sum(1 for p in ps if not p.strip())
        nth = kw["nth_paragraph"]
        if nth > n:
            return False
        p = ps[nth - 1].strip()
        if not p:
            return False
        w = p.split()[0].strip().lstrip("'").lstrip('"')
        first = ""
        for c in w:
            if c in {".", ",", "?", "!", "'", '"'}:
                break
            first += c.lower()
        return n == kw["num_paragraphs"] and first == kw["first_word"].lower()
    if iid == "detectable_content:number_placeholders":
        return len(re.findall(r"\[.*?\]", value)) >= kw["num_placeholders"]
    if iid == "detectable_content:postscript":
        m = kw["postscript_marker"].strip()
        v = value.lower()
        if m == "P.P.S":
            pat = r"\s*p\.\s?p\.\s?s.*$"
        elif m == "P.S.":
            pat = r"\s*p\.\s?s\..*$"
        else:
            pat = r"\s*" + m.lower() + r".*$"
        return bool(re.findall(pat, v, flags=re.MULTILINE))
    if iid == "detectable_format:number_bullet_lists":
        a = re.findall(r"^\s*\*[^\*].*$", value, flags=re.MULTILINE)
        b = re.findall(r"^\s*-.*$", value, flags=re.MULTILINE)
        return len(a) + len(b) == kw["num_bullets"]
    if iid == "detectable_format:constrained_response":
        v = value.strip()
        return any(o in v for o in ("My answer is yes.", "My answer is no.", "My answer is maybe."))
    if iid == "detectable_format:number_highlighted_sections":
        n = sum(1 for h in re.findall(r"\*[^\n\*]*\*", value) if h.strip("*").strip())
        n += sum(1 for h in re.findall(r"\*\*[^\n\*]*\*\*", value) if h.removeprefix("**").removesuffix("**").strip())
        return n >= kw["num_highlights"]
    if iid == "detectable_format:multiple_sections":
        pat = r"\s?" + kw["section_spliter"].strip() + r"\s?\d+\s?"
        return len(re.split(pat, value)) - 1 >= kw["num_sections"]
    if iid == "detectable_format:json_format":
        v = (value.strip().removeprefix("```json").removeprefix("```Json").removeprefix("```JSON")
             .removeprefix("```").removesuffix("```").strip())
        try:
            json.loads(v)
        except ValueError:
            return False
        return True
    if iid == "detectable_format:title":
        return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", value))
    if iid == "combination:two_responses":
        valid = []
        parts = value.split("******")
        for i, p in enumerate(parts):
            if not p.strip():
                if i != 0 and i != len(parts) - 1:
                    return False
            else:
                valid.append(p)
        return len(valid) == 2 and valid[0].strip() != valid[1].strip()
    if iid == "combination:repeat_prompt":
        return value.strip().lower().startswith(kw["prompt_to_repeat"].strip().lower())
    if iid == "startend:end_checker":
        return value.strip().strip('"').lower().endswith(kw["end_phrase"].strip().lower())
    if iid == "startend:quotation":
        v = value.strip()
        return len(v) > 1 and v[0] == '"' and v[-1] == '"'
    if iid == "punctuation:no_comma":
        return not re.search(r"\,", value)
    return None  # needs nltk / langdetect


def loose_variants(r):
    lines = r.split("\n")
    f = "\n".join(lines[1:]).strip()
    l = "\n".join(lines[:-1]).strip()
    b = "\n".join(lines[1:-1]).strip()
    return [r, r.replace("*", ""), f, l, b, f.replace("*", ""), l.replace("*", ""), b.replace("*", "")]


def variants(rng, prompt, kw_list):
    p = prompt[:400]
    words = p.split()
    out = [p, p.upper(), p.lower(), '"' + p + '"', p + "\nP.S. " + words[-1] if words else p]
    paras = [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)][:4]
    out.append("\n***\n".join(paras))
    out.append("\n\n".join(paras))
    out.append("\n".join(rng.choice(["* ", "- ", "  * ", "1. ", "**"]) + x for x in paras))
    out.append("```json\n" + json.dumps({"answer": p[:80]}) + "\n```")
    out.append("<<" + " ".join(words[:3]) + ">>\nSECTION 1\n" + (paras[0] if paras else "") + "\nSection 2\n*" +
               " ".join(words[3:6]) + "* [x]")
    out.append((paras[0] if paras else "a") + "\n******\n" + (paras[-1] if paras else "b"))
    rng.shuffle(out)
    targeted = []
    for kw in kw_list:  # variants built from the kwargs, so that positive verdicts occur too
        for k in ("end_phrase", "prompt_to_repeat", "keyword"):
            if k in kw:
                targeted.append(kw[k] + " " + p[:60] if k != "end_phrase" else p[:60] + " " + kw[k])
        if "keywords" in kw:
            targeted.append(" ".join(kw["keywords"]) + ", " + p[:60])
        if "first_word" in kw:
            n = kw["num_paragraphs"]
            ps = [(paras[i % len(paras)] if paras else "x") for i in range(n)]
            ps[kw["nth_paragraph"] - 1] = kw["first_word"].capitalize() + rng.choice([", ", " ", ": "]) + ps[kw["nth_paragraph"] - 1]
            targeted.append("\n\n".join(ps))
        if "num_paragraphs" in kw and "first_word" not in kw:
            n = kw["num_paragraphs"]
            targeted.append("\n***\n".join((paras[i % len(paras)] if paras else "x") for i in range(n)))
    return (targeted[:2] + out)[:3]


def main():
    src, dst = sys.argv[1], sys.argv[2]
    rng = random.Random(20240601)
    n_rec = n_verdicts = 0
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            ids = rec["instruction_id_list"]
            kws = [{k: v for k, v in kw.items() if v is not None} for kw in rec["kwargs"]]
            keep = [(i, k) for i, k in zip(ids, kws) if check(i, k, "x") is not None]
            if not keep:
                continue
            for resp in variants(rng, rec["prompt"], [k for _, k in keep]):
                verdicts = []
                for iid, kw in keep:
                    strict = bool(resp.strip()) and bool(check(iid, kw, resp))
                    loose = any(c.strip() and check(iid, kw, c) for c in loose_variants(resp))
                    verdicts.append({"id": iid, "kwargs": kw, "strict": strict, "loose": bool(loose)})
                    n_verdicts += 1
                out.write(json.dumps({"key": rec["key"], "response": resp, "verdicts": verdicts},
                                     ensure_ascii=False) + "\n")
                n_rec += 1
    print(f"{n_rec} responses, {n_verdicts} verdicts -> {dst}")


if __name__ == "__main__":
    main()
