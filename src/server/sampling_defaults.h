// quench/server/sampling_defaults.h: the server-side sampling defaults of a checkpoint.
#pragma once

#include "engine/sampling_params.h"

namespace quench {
struct GenerationConfig;
}

namespace quench::server {

/// vLLM's default resolution (../shared/reference/openai-api.md §1.6): built-in defaults
/// (temperature 1, top_p 1, top_k 0) overridden by generation_config.json's temperature, top_k and
/// top_p when present; request fields override these in turn.
SamplingParams server_sampling_defaults(const GenerationConfig& gen);

}  // namespace quench::server
