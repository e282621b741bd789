// fetch(): many byte ranges of a source with several requests in flight, delivered in order.
//
// The ranges are cut into pieces of at most piece_bytes. Workers claim pieces in order, but
// only into one of 2 × n_parallel slots: a piece waits for its slot until the piece that held
// it was delivered, so host memory stays at slots × piece_bytes however large the file. The
// calling thread delivers slot after slot in piece order (the loader uploads each to the
// device as it arrives). A piece whose source raised SourceDropped — it spent its own retries
// on a dropped connection — is requested again whole, after a delay; pieces already delivered
// are never fetched again, so a load resumes where the connection dropped.
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "ml/gguf.h"

namespace ml::gguf {
namespace {

struct Piece {
  size_t range = 0;
  uint64_t begin = 0, size = 0;  // bytes of the range
};

std::vector<Piece> cut(std::span<const FetchRange> ranges, uint64_t piece_bytes) {
  std::vector<Piece> pieces;
  for (size_t i = 0; i < ranges.size(); ++i) {
    for (uint64_t b = 0; b < ranges[i].size; b += piece_bytes)
      pieces.push_back({i, b, std::min(piece_bytes, ranges[i].size - b)});
  }
  return pieces;
}

struct Slot {
  std::vector<std::byte> bytes;
  size_t piece = SIZE_MAX;  // the piece it holds or is being filled with
  bool ready = false;
  std::exception_ptr error;
};

}  // namespace

FetchStats fetch(Source& source, std::span<const FetchRange> ranges, const FetchOptions& o,
                 const Deliver& deliver) {
  if (o.n_parallel < 1 || o.n_parallel > 64) fail("fetch: n_parallel must be 1..64");
  if (o.piece_bytes < 4096 || o.piece_bytes > (uint64_t(1) << 30))
    fail("fetch: piece_bytes must be 4 KiB..1 GiB");
  if (o.retries < 0 || o.retries > 100) fail("fetch: retries must be 0..100");
  for (const FetchRange& r : ranges) {
    if (r.offset > source.size() || r.size > source.size() - r.offset)
      fail(source.name(), ": range ", r.offset, "+", r.size, " is past the end (", source.size(),
           " bytes)");
  }
  const std::vector<Piece> pieces = cut(ranges, o.piece_bytes);
  FetchStats stats;

  // A mapped file: its pages are the buffer.
  if (!ranges.empty() && source.view(ranges[0].offset, 0).data() != nullptr) {
    for (const Piece& p : pieces) {
      deliver(p.range, p.begin, source.view(ranges[p.range].offset + p.begin, p.size));
      stats.bytes += p.size;
      ++stats.pieces;
    }
    return stats;
  }

  std::mutex mutex;
  std::condition_variable changed;
  std::vector<Slot> slots(size_t(2 * o.n_parallel));
  size_t next = 0;  // the next piece a worker claims
  bool stop = false;
  int retried = 0;

  auto work = [&] {
    std::vector<std::byte> buffer;
    for (;;) {
      size_t i;
      {
        std::unique_lock<std::mutex> lock(mutex);
        // Piece i goes into slot i % n once the piece before it there was delivered.
        changed.wait(lock, [&] {
          return stop || next >= pieces.size() || slots[next % slots.size()].piece == SIZE_MAX;
        });
        if (stop || next >= pieces.size()) return;
        i = next++;
        slots[i % slots.size()].piece = i;
        buffer = std::move(slots[i % slots.size()].bytes);
      }
      const Piece& p = pieces[i];
      buffer.resize(size_t(p.size));
      std::exception_ptr error;
      for (int attempt = 0;; ++attempt) {
        try {
          source.read(ranges[p.range].offset + p.begin, buffer);
          break;
        } catch (const SourceDropped&) {
          if (attempt >= o.retries) {
            error = std::current_exception();
            break;
          }
          {
            std::lock_guard<std::mutex> lock(mutex);
            ++retried;
            if (stop) return;
          }
          std::this_thread::sleep_for(
              std::chrono::milliseconds(int64_t(o.retry_delay_ms) << std::min(attempt, 10)));
        } catch (...) {
          error = std::current_exception();
          break;
        }
      }
      std::lock_guard<std::mutex> lock(mutex);
      Slot& s = slots[i % slots.size()];
      s.bytes = std::move(buffer);
      s.error = error;
      s.ready = true;
      changed.notify_all();
    }
  };

  std::vector<std::thread> workers;
  const size_t n_workers = std::min<size_t>(size_t(o.n_parallel), pieces.size());
  for (size_t w = 0; w < n_workers; ++w) workers.emplace_back(work);
  auto finish = [&] {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
      changed.notify_all();
    }
    for (auto& t : workers) t.join();
  };

  try {
    for (size_t i = 0; i < pieces.size(); ++i) {
      Slot* s = &slots[i % slots.size()];
      {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return s->piece == i && s->ready; });
        if (s->error) std::rethrow_exception(s->error);
      }
      // The slot is this thread's until it is released below; workers skip it meanwhile.
      const Piece& p = pieces[i];
      deliver(p.range, p.begin, std::span<const std::byte>(s->bytes.data(), size_t(p.size)));
      stats.bytes += p.size;
      ++stats.pieces;
      std::lock_guard<std::mutex> lock(mutex);
      s->piece = SIZE_MAX;
      s->ready = false;
      changed.notify_all();
    }
  } catch (...) {
    finish();
    throw;
  }
  finish();
  stats.retried = retried;
  return stats;
}

}  // namespace ml::gguf
