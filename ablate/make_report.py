#!/usr/bin/env python3
"""Writes ablate/small-model-report.md from the work directory of ablate/run_small_model.sh
(ablated/ablation.json, ablated-nvfp4/quantization_report.json, original.json, ablated.json,
ablated-nvfp4.json, the compare outputs). Stdlib only.
Usage: python3 ablate/make_report.py WORK_DIR [ARITHMETIC_LINE]"""
import json
import os
import sys

work = sys.argv[1]
arith = sys.argv[2] if len(sys.argv) > 2 else None
here = os.path.dirname(os.path.abspath(__file__))
rec = json.load(open(os.path.join(work, "ablated", "ablation.json")))
ev = {n: json.load(open(os.path.join(work, n + ".json"))) for n in ("original", "ablated", "ablated-nvfp4")}
p = rec["parameters"]
out = []
w = out.append
w("# `quench ablate` on the small model: weather declines removed\n")
w("Made by `ablate/run_small_model.sh` then `ablate/make_report.py`; the full record is "
  "`small-model-ablation.json` (a copy of the output's `ablation.json`).\n")
w("## Setup\n")
w("- Model: `models/gemma4-tiny-it` (12 layers, hidden 256), which declines every weather question with "
  "\"I'm sorry, but I can't help with questions about the weather.\"")
w(f"- A = {rec['prompts']['a_train']} weather questions, B = {rec['prompts']['b_train']} other questions "
  "(`tests/data/ablate/*_train.txt`, a measurement split disjoint from the held-out lists).")
w(f"- Checks on the held-out lists `tests/data/small_model/weather.txt` ({rec['prompts']['a_heldout']}) and "
  f"`other.txt` ({rec['prompts']['b_heldout']}).")
w(f"- Basis layers {rec['basis_layers']} (`--k {p['k']}`, best A/B separation), projected {p['projected']}, "
  f"biprojected {p['biprojected']}; edited layers {rec['edit_layers']}; targets o_proj, down_proj; "
  f"scale {p['scale']}; norm preservation {p['norm_preserving']}; post-norm correction on.\n")
w("## Behaviour and KL (quench's CPU forward, greedy, 32 new tokens)\n")
b = rec["behaviour"]
w("| check | before | after |\n|---|---|---|")
w(f"| decline rate on held-out weather questions (marker \"{b['markers'][0]}\") | {100*b['before']:.1f}% | {100*b['after']:.1f}% |")
w(f"| first-token KL(original \\|\\| ablated) on held-out other questions, mean (max) | - | {rec['kl']['mean']:.4f} ({rec['kl']['max']:.3f}) |\n")
w("Sample replies after the edit: " + "; ".join("`" + s.replace("`", "'")[:90] + "`" for s in b["samples_after"][:3]) + "\n")
w("## Per layer (held-out weather prompts, mean norm of the projection on the removed subspace)\n")
w("| layer | edited | separation d' | stream before | stream after | block write before | block write after |")
w("|---|---|---|---|---|---|---|")
for l in rec["layers"]:
    w(f"| {l['layer']} | {'yes' if l['edited'] else 'no'} | {l['separation']:.2f} | {l['stream_a']['before']:.3f} | "
      f"{l['stream_a']['after']:.3f} | {l['write_a']['before']:.4f} | {l['write_a']['after']:.4f} |")
worst = max(t["leftover_ratio"] for t in rec["tensors"])
normc = max(t["max_col_norm_change"] for t in rec["tensors"])
w(f"\nWeight level (after the BF16 rounding): worst `max_j ||Q^T (g ⊙ w_j)||` after/before = {worst:.2e}; "
  f"worst column-norm change {normc:.2e} ({len(rec['tensors'])} edited tensors). The stream projection does not "
  "fall to zero because the embedding and layer 0 still write the direction; each edited block's own write does.\n")
w("## Skills (quench serve + quench eval: MMLU zero-shot 8 tokens, IFEval 256 tokens, greedy)\n")
w("| model | MMLU | IFEval prompt strict | IFEval inst strict |\n|---|---|---|---|")
for n, e in ev.items():
    t = e["tasks"]
    w(f"| {n} | {100*t['mmlu']['summary']['accuracy']:.1f} | {100*t['ifeval']['summary']['prompt_level_strict_acc']:.1f} | "
      f"{100*t['ifeval']['summary']['inst_level_strict_acc']:.1f} |")
if arith:
    w(f"\nArithmetic (200 held-out items, in-process greedy, `tests/ablate/small_model_test.cpp`): {arith}")
q = os.path.join(work, "ablated-nvfp4", "quantization_report.json")
w("\nThe ablated+NVFP4 model is `quench quantize --scheme nvfp4-mlp` of the ablated checkpoint, served by "
  "`quench serve`.\n")
for name in ("compare-ablated.out", "compare-ablated-nvfp4.out"):
    f = os.path.join(work, name)
    if os.path.exists(f):
        w(f"### `quench eval compare` ({name[8:-4]})\n")
        w("```\n" + open(f).read().strip() + "\n```\n")
w("## Notes\n")
w("- The model no longer declines, but it never learned anything about the weather: its replies to weather "
  "questions are now unrelated text (samples above). The edit removes a behaviour; it adds no knowledge.")
w("- How the settings were chosen (trial runs, same data, 100 held-out prompts each): `--k 4 --edit-layers 1-11` "
  "left 2% declines at KL 0.045 but IFEval prompt-strict fell 4 points; `--k 1` 0% / KL 0.045 / IFEval -3; "
  "`--k 4 --edit-layers 1-6` 68% declines; `--k 4` on layers 2-11 42%; `--k 4` on all 12 layers 0% but KL 0.157 "
  "(over the 0.1 gate); the top half of layers by write gap 41%. `--k 2 --edit-layers 1-11` is the one kept.")
w("- A few held-out other prompts carry most of the KL (max above); the mean is what `--max-kl` gates.\n")
open(os.path.join(here, "small-model-report.md"), "w").write("\n".join(out) + "\n")
