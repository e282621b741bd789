#pragma once
#include <span>
#include <string>
#include <string_view>

#include "ml/chat.h"

namespace ml::chat {

// The Harmony prompt (harmony.cpp); render() dispatches to it.
std::string render_harmony(std::span<const Message> messages, const HarmonyOptions& options);
// Fills role, channel, recipient and content type from a message header as text, e.g.
// "<|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json".
void parse_header(std::string_view header, HarmonyMessage& m);

}  // namespace ml::chat
