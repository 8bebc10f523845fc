// quench/model/model.cpp: loading a checkpoint directory into a Model.
#include "model/model.h"

namespace quench {

Model::Model(Checkpoint ckpt, ModelConfig config, QuantConfig quant)
    : checkpoint_(std::move(ckpt)), config_(std::move(config)), quant_(std::move(quant)) {
  weights_ = ModelWeights::bind(checkpoint_, config_, quant_);
}

std::unique_ptr<Model> Model::load(const std::filesystem::path& dir) {
  ModelConfig config = ModelConfig::load(dir);
  QuantConfig quant = QuantConfig::load(dir, config.raw);
  Checkpoint ckpt = Checkpoint::open(dir);
  return std::unique_ptr<Model>(new Model(std::move(ckpt), std::move(config), std::move(quant)));
}

}  // namespace quench
