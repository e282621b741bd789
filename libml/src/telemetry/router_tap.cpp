// RouterTap: the MoE router's choices per token for --telemetry; see ml/telemetry.h.
#include "ml/telemetry.h"

namespace ml::telemetry {

RouterTap::RouterTap(Backend& be, int n_layer) : be_(be), routes_(size_t(std::max(0, n_layer))) {
  be_.set_observer([this](std::string_view name, int il, const Tensor& x) {
    if (il < 0 || size_t(il) >= routes_.size()) return;
    if (name == "ffn_moe_topk") routes_[size_t(il)].first = x;
    if (name == "ffn_moe_weights") routes_[size_t(il)].second = x;
  });
}

std::vector<Router> RouterTap::take(int64_t pos0, std::span<const int32_t> tokens) {
  struct Caught {
    int layer;
    Tensor ids;
    std::vector<int32_t> id_values;
    std::vector<float> weight_values;
  };
  std::vector<Caught> caught;
  std::vector<Tensor> ts;
  for (size_t il = 0; il < routes_.size(); ++il) {
    const auto& [ids, weights] = routes_[il];
    if (!ids || !weights) continue;
    if (ids.n_elements() != weights.n_elements())
      fail("router telemetry: layer ", il, " ids ", shape_string(ids), " but weights ",
           shape_string(weights));
    caught.push_back({int(il), ids, std::vector<int32_t>(size_t(ids.n_elements())),
                      std::vector<float>(size_t(weights.n_elements()))});
    ts.push_back(ids);
    ts.push_back(weights);
  }
  std::vector<std::span<std::byte>> outs;
  for (Caught& c : caught) {
    outs.push_back(std::as_writable_bytes(std::span(c.id_values)));
    outs.push_back(std::as_writable_bytes(std::span(c.weight_values)));
  }
  be_.read(ts, outs);
  for (auto& route : routes_) route = {};

  std::vector<Router> events(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) events[i] = {pos0 + int64_t(i), tokens[i], {}};
  for (const Caught& c : caught) {
    // [k, n] for the pass's last n tokens (a last layer may run only the output rows).
    const auto k = size_t(c.ids.ne[0]), n = std::min(size_t(c.ids.n_rows()), tokens.size());
    for (size_t j = 0; j < n; ++j) {
      const auto first = ptrdiff_t(j * k), last = ptrdiff_t((j + 1) * k);
      events[tokens.size() - n + j].layers.push_back(
          {c.layer,
           {c.id_values.begin() + first, c.id_values.begin() + last},
           {c.weight_values.begin() + first, c.weight_values.begin() + last}});
    }
  }
  std::erase_if(events, [](const Router& e) { return e.layers.empty(); });
  return events;
}

}  // namespace ml::telemetry
