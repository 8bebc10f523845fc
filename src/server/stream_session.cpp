// quench/server/stream_session.cpp: SSE pump over a GenerationJob.
#include "server/stream_session.h"

#include "server/api_error.h"
#include "server/http_util.h"
#include "server/sse.h"

namespace quench::server {

StreamSession::StreamSession(ServingContext& ctx, std::unique_ptr<GenerationJob> job, RequestLogEntry log,
                             std::chrono::steady_clock::time_point t0)
    : ctx_(ctx), job_(std::move(job)), log_(std::move(log)), t0_(t0), last_write_(std::chrono::steady_clock::now()) {
  ++ctx_.in_flight();
}

StreamSession::~StreamSession() {
  if (!logged_) finish_log(job_ && job_->finished() ? "incomplete" : "abort (client disconnected)");
  job_.reset();  // aborts unfinished engine requests
  --ctx_.in_flight();
}

void StreamSession::finish_log(const std::string& finish) {
  logged_ = true;
  log_.latency_ms = ms_since(t0_);
  fill_from_job(log_, *job_);
  if (!finish.empty()) log_.finish = finish;  // empty: the job's own finish reasons
  log_request(log_);
}

bool StreamSession::write(httplib::DataSink& sink, const std::string& s) {
  if (s.empty()) return true;
  last_write_ = std::chrono::steady_clock::now();
  return sink.write(s.data(), s.size());
}

bool StreamSession::pump(httplib::DataSink& sink) {
  if (done_) return false;
  if (!sink.is_writable()) return false;
  if (!opened_) {
    opened_ = true;
    return write(sink, opening());
  }
  std::string out;
  try {
    auto deltas = job_->next(std::chrono::milliseconds(100));
    if (!deltas.empty()) out = on_deltas(deltas);
    if (job_->finished()) {
      out += closing();
      out += sse_done();
      done_ = true;
    }
  } catch (const ApiError& e) {
    // After the 200 went out, failures are reported in-band, then [DONE] (vLLM).
    out += sse_event(e.to_json()) + sse_done();
    done_ = true;
    log_.status = e.status();
  }
  if (out.empty() && std::chrono::steady_clock::now() - last_write_ > std::chrono::seconds(1)) out = sse_comment();
  if (!write(sink, out)) return false;
  if (done_) {
    finish_log({});
    sink.done();
  }
  return true;
}

void StreamSession::attach(std::shared_ptr<StreamSession> session, httplib::Response& res) {
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream; charset=utf-8",
      [session](size_t, httplib::DataSink& sink) { return session->pump(sink); },
      [session](bool) mutable {
        // Called when the response ends, whether complete or cut off. Dropping our reference lets
        // the session (and its engine requests) go as soon as the provider copy is gone too.
        session->job().abort();
      });
}

}  // namespace quench::server
