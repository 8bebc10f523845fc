// quench/server/sampling_defaults.cpp: generation_config sampling defaults.
#include "server/sampling_defaults.h"

#include "tokenizer/generation_config.h"

namespace quench::server {

SamplingParams server_sampling_defaults(const GenerationConfig& gen) {
  SamplingParams p;
  if (gen.temperature) p.temperature = static_cast<float>(*gen.temperature);
  if (gen.top_k) p.top_k = *gen.top_k;
  if (gen.top_p) p.top_p = static_cast<float>(*gen.top_p);
  return p;
}

}  // namespace quench::server
