// quench/ablate/ablate.h: the whole `quench ablate` job: measure A/B residual means through the CPU
// forward pass, choose basis and edit layers, edit the BF16 weights, check the edit (projections,
// first-token KL on held-out B, marker rate on held-out A), gate on --max-kl, write the checkpoint.
// Spec: ../shared/reference/directional-ablation.md §8 (pipeline).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ablate/directions.h"
#include "ablate/edit.h"
#include "ablate/prompts.h"

namespace quench::ablate {

/// Every parameter of a run (the CLI flags of `quench ablate`).
struct AblateJob {
  std::filesystem::path in_dir, out_dir;
  std::filesystem::path a_prompts, b_prompts;    ///< measurement sets (A = behaviour to remove)
  std::filesystem::path heldout_a, heldout_b;    ///< optional held-out sets for the checks
  double heldout_fraction = 0.2;                 ///< split off the end of --a/--b when no held-out file is given
  std::vector<int> basis_layers;                 ///< `--basis-layers`; empty = pick `k` by separation
  int k = 4;                                     ///< `--k`
  std::string edit_layers = "auto";              ///< "auto" (blocks 1..L-1), "all" or a comma list / ranges ("3,5-9")
  SubspaceOptions subspace;                      ///< --projected, --biprojected
  EditOptions edit;                              ///< --targets, --scale, --norm-preserving
  PromptFormat format;                           ///< --chat-template, --system
  std::string position = "last";                 ///< `--position` (only "last")
  bool dry_run = false;                          ///< measure, edit in memory, report; write nothing
  std::optional<double> max_kl;                  ///< fail (write nothing) when mean first-token KL exceeds it
  std::vector<std::string> markers;              ///< `--marker`: behaviour rate on held-out A
  int max_new_tokens = 32;                       ///< greedy tokens per reply for the behaviour rate
  int max_eval_prompts = 100;                    ///< cap on held-out prompts per set (0 = all)
};

/// Outcome of a run.
struct AblateResult {
  nlohmann::json record;        ///< every parameter and statistic (written as ablation.json)
  bool written = false;         ///< the checkpoint was written to out_dir
  bool gate_failed = false;     ///< --max-kl exceeded (nothing written)
  std::string gate_message;
};

/// Parses an --edit-layers / --basis-layers list ("24,37,39,26", ranges "3-7"). Throws
/// InvalidArgument naming `flag` for a malformed item or a layer outside [0, num_layers).
std::vector<int> parse_layer_list(const std::string& text, int num_layers, const std::string& flag);

/// Runs the job. Throws UnsupportedError for a quantized input ("ablate the BF16 checkpoint and
/// quantize after"), InvalidArgument for bad parameters, and the loaders' / writer's errors.
AblateResult run_ablate(const AblateJob& job);

/// A short human-readable summary of the record (per-layer table, KL, behaviour rate, gate).
std::string format_ablate_summary(const AblateResult& result);

}  // namespace quench::ablate
