// quench/server/stream_session.h: drives one SSE response from a GenerationJob (chat or completions).
//
// cpp-httplib calls pump() from the connection's thread until it returns false or the sink is done.
// Each call waits up to 100 ms for engine output and writes the events it produced; after 1 s
// without output it writes an SSE comment, so a client that left is noticed within a second even
// while its request waits in the queue. A failed write or a closed connection ends the stream: the
// session is destroyed, and the GenerationJob's destructor aborts the engine requests, which frees
// their KV blocks (../shared/reference/openai-api.md §0 "Disconnect").
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <httplib.h>

#include "server/generation_job.h"
#include "server/request_log.h"
#include "server/serving_context.h"

namespace quench::server {

class StreamSession {
 public:
  StreamSession(ServingContext& ctx, std::unique_ptr<GenerationJob> job, RequestLogEntry log,
                std::chrono::steady_clock::time_point t0);
  virtual ~StreamSession();

  /// One provider step; false ends the response (client gone or stream complete).
  bool pump(httplib::DataSink& sink);
  /// Installs this session as `res`'s chunked SSE provider (takes ownership).
  static void attach(std::shared_ptr<StreamSession> session, httplib::Response& res);

 protected:
  /// Events sent before any engine output (role chunks, echoed prompts).
  virtual std::string opening() = 0;
  /// Events for the deltas of one engine step. `finished_choices` lists choices that just finished.
  virtual std::string on_deltas(const std::vector<ChoiceDelta>& deltas) = 0;
  /// Events after every choice finished, before [DONE] (the usage chunk when asked).
  virtual std::string closing() = 0;

  GenerationJob& job() { return *job_; }
  ServingContext& ctx_;

 private:
  bool write(httplib::DataSink& sink, const std::string& s);
  /// Writes the request log line; `finish` overrides the job's finish reasons when not empty.
  void finish_log(const std::string& finish);

  std::unique_ptr<GenerationJob> job_;
  RequestLogEntry log_;
  std::chrono::steady_clock::time_point t0_;
  std::chrono::steady_clock::time_point last_write_;
  bool opened_ = false, done_ = false, logged_ = false;
};

}  // namespace quench::server
