// quench/core/error.h: the typed errors every library layer throws.
//
// Library code throws; the CLI prints `what()` on one line and exits non-zero; the server maps
// InvalidRequest to HTTP 4xx. Every message names the input (file, tensor, JSON path, flag) and
// what was expected, e.g. "model.safetensors: tensor 'x.weight': shape [3,4] needs 24 bytes, has 20".
#pragma once

#include <stdexcept>
#include <string>

namespace quench {

/// Base of all quench errors.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

/// A file on disk is malformed (safetensors, tokenizer.json, config.json ...).
class FormatError : public Error {
 public:
  using Error::Error;
};

/// A config names a feature or value quench does not implement (by name, never silently ignored).
class UnsupportedError : public Error {
 public:
  using Error::Error;
};

/// A caller-supplied argument (CLI flag, request field) is out of range or of the wrong kind.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// The service cannot take the request now (the engine is shutting down); the server answers 503.
class Unavailable : public Error {
 public:
  using Error::Error;
};

/// An OS-level failure (open, mmap, write, rename) with the path and errno text.
class IoError : public Error {
 public:
  using Error::Error;
};

}  // namespace quench
