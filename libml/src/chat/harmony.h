#pragma once
#include <span>
#include <string>

#include "ml/chat.h"

namespace ml::chat {

// The Harmony prompt (harmony.cpp); render() dispatches to it.
std::string render_harmony(std::span<const Message> messages, const HarmonyOptions& options);

}  // namespace ml::chat
