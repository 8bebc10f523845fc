// quench/cli/ablate.cpp: `quench ablate IN_DIR OUT_DIR --a A_PROMPTS --b B_PROMPTS ...`: directional
// ablation of a BF16 Gemma 4 checkpoint from two contrastive prompt sets, with a capability gate
// (src/ablate/, ../shared/reference/directional-ablation.md).
#include <cstdio>
#include <memory>
#include <sstream>

#include "ablate/ablate.h"
#include "cli/verb.h"
#include "core/error.h"
#include "io/text_file.h"
#include "io/safetensors.h"

namespace {

struct AblateCliOptions {
  std::string in_dir, out_dir, a, b, heldout_a, heldout_b, basis_layers, edit_layers = "auto",
      targets = "o_proj,down_proj", norm_preserving = "column", position = "last", chat_template = "on", system, report;
  int k = 0, max_new_tokens = 32, max_eval_prompts = 100;
  double scale = 1.0, heldout_fraction = 0.2, max_kl = -1.0, rank_tol = 1e-6;
  bool projected = false, biprojected = false, dry_run = false;
  std::vector<std::string> markers;
};

int run(const AblateCliOptions& o) {
  using namespace quench;
  using namespace quench::ablate;
  AblateJob job;
  job.in_dir = o.in_dir;
  job.out_dir = o.out_dir;
  job.a_prompts = o.a;
  job.b_prompts = o.b;
  job.heldout_a = o.heldout_a;
  job.heldout_b = o.heldout_b;
  job.heldout_fraction = o.heldout_fraction;
  if (!o.basis_layers.empty() && o.k > 0) throw InvalidArgument("--basis-layers and --k are exclusive: give one");
  if (!o.basis_layers.empty()) {
    // Range-checked against the model inside run_ablate; parse syntax here (no upper bound yet).
    job.basis_layers = parse_layer_list(o.basis_layers, 1 << 20, "--basis-layers");
  }
  job.k = o.k > 0 ? o.k : 4;
  job.edit_layers = o.edit_layers;
  EditTargets t{false, false, false};
  std::stringstream ss(o.targets);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item == "o_proj") t.o_proj = true;
    else if (item == "down_proj") t.down_proj = true;
    else if (item == "embed") t.embed = true;
    else if (!item.empty()) throw InvalidArgument("--targets '" + o.targets + "': unknown target '" + item + "' (expected o_proj, down_proj, embed)");
  }
  job.edit.targets = t;
  job.edit.scale = o.scale;
  job.edit.norm_preserving = o.norm_preserving == "column";
  job.subspace.projected = o.projected;
  job.subspace.biprojected = o.biprojected;
  job.subspace.rank_tol = o.rank_tol;
  job.format.chat_template = o.chat_template == "on";
  job.format.system = o.system;
  job.position = o.position;
  job.dry_run = o.dry_run;
  if (o.max_kl >= 0) job.max_kl = o.max_kl;
  job.markers = o.markers;
  job.max_new_tokens = o.max_new_tokens;
  job.max_eval_prompts = o.max_eval_prompts;
  if (!job.dry_run && job.out_dir.empty()) throw InvalidArgument("OUT_DIR is required unless --dry-run");
  AblateResult r = run_ablate(job);
  if (!o.report.empty()) write_file_atomic(o.report, r.record.dump(2) + "\n");
  std::fputs(format_ablate_summary(r).c_str(), stdout);
  return r.gate_failed ? 2 : 0;
}

const bool registered = quench::cli::register_verb(
    {"ablate", "Directional ablation of a BF16 checkpoint from two contrastive prompt sets (with a KL gate)",
     [](CLI::App& app) {
       auto o = std::make_shared<AblateCliOptions>();
       app.add_option("in_dir", o->in_dir, "BF16 checkpoint directory (quantized inputs are refused)")
           ->required()
           ->check(CLI::ExistingDirectory);
       app.add_option("out_dir", o->out_dir, "Output directory (must not exist or be empty; written atomically); "
                                             "optional with --dry-run");
       app.add_option("--a", o->a, "Prompts of the behaviour to remove (one a line, or JSONL with \"prompt\")")
           ->required()
           ->check(CLI::ExistingFile);
       app.add_option("--b", o->b, "Contrast prompts (same formats)")->required()->check(CLI::ExistingFile);
       app.add_option("--heldout-a", o->heldout_a, "Held-out A prompts for the checks (default: the last "
                                                   "--heldout-fraction of --a)")
           ->check(CLI::ExistingFile);
       app.add_option("--heldout-b", o->heldout_b, "Held-out B prompts for the KL gate (default: the last "
                                                   "--heldout-fraction of --b)")
           ->check(CLI::ExistingFile);
       app.add_option("--heldout-fraction", o->heldout_fraction, "Fraction split off --a/--b when no held-out file (0.2)");
       app.add_option("--basis-layers", o->basis_layers, "Layers whose difference-of-means directions span the removed "
                                                         "subspace, e.g. 24,37,39,26");
       app.add_option("--k", o->k, "Pick the K layers with the best A/B separation (default 4)")->check(CLI::Range(1, 1 << 16));
       app.add_option("--edit-layers", o->edit_layers, "Layers to edit: auto (every block but the first), all, "
                                                       "or a list 10-20,23");
       app.add_option("--targets", o->targets, "Writers to edit: o_proj,down_proj[,embed] (default o_proj,down_proj)");
       app.add_option("--scale", o->scale, "alpha: 1 removes the subspace fully (default 1)");
       app.add_flag("--projected", o->projected, "Remove each direction's component along its layer's B mean");
       app.add_flag("--biprojected", o->biprojected, "Also re-project each direction against the B mean of every edited layer");
       app.add_option("--norm-preserving", o->norm_preserving, "column (default: keep each write vector's norm) or none")
           ->check(CLI::IsMember({"column", "none"}));
       app.add_option("--position", o->position, "Token position measured: last (the last prompt token)")
           ->check(CLI::IsMember({"last"}));
       app.add_option("--chat-template", o->chat_template, "on (default): render prompts with the chat format and "
                                                           "generation prompt; off: <bos> + raw text")
           ->check(CLI::IsMember({"on", "off"}));
       app.add_option("--system", o->system, "Optional system message for every prompt");
       app.add_option("--rank-tol", o->rank_tol, "Relative |R_ii| under which a near-dependent direction is dropped (1e-6)");
       app.add_flag("--dry-run", o->dry_run, "Measure, edit in memory and report; write no checkpoint");
       app.add_option("--max-kl", o->max_kl, "Fail (exit 2, nothing written) when the mean first-token KL on "
                                             "held-out B exceeds this");
       app.add_option("--marker", o->markers, "Text whose presence in a reply counts as the behaviour (repeatable); "
                                              "enables the behaviour rate on held-out A");
       app.add_option("--max-new-tokens", o->max_new_tokens, "Greedy tokens per reply for the behaviour rate (32)")
           ->check(CLI::Range(1, 1 << 16));
       app.add_option("--max-eval-prompts", o->max_eval_prompts, "Held-out prompts used per set (100; 0 = all)")
           ->check(CLI::Range(0, 1 << 20));
       app.add_option("--report", o->report, "Also write the JSON record here (always OUT_DIR/ablation.json)");
       return [o] { return run(*o); };
     }});

}  // namespace
