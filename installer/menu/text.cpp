// Text as leo-menu's pager shows it (text.hpp).
#include "text.hpp"

#include <algorithm>
#include <sstream>

namespace leo::menu {

namespace {

/// A byte that continues a UTF-8 sequence (10xxxxxx): no line may start with one.
bool continues(char c) { return (static_cast<unsigned char>(c) & 0xC0U) == 0x80U; }

void wrap(std::string line, std::size_t width, std::vector<std::string>& out) {
    while (line.size() > width) {
        std::size_t cut = width;
        while (cut > 0 && continues(line[cut])) --cut;
        const auto blank = line.rfind(' ', width);
        if (blank != std::string::npos && blank > 0) {
            out.push_back(line.substr(0, blank));
            line.erase(0, blank + 1);
        } else {
            if (cut == 0) cut = width;  // not UTF-8 after all: cut where it fits
            out.push_back(line.substr(0, cut));
            line.erase(0, cut);
        }
    }
    out.push_back(std::move(line));
}

} // namespace

std::vector<PagerRow> pager_rows(const std::string& text, std::size_t width, std::size_t* lines) {
    width = std::max<std::size_t>(width, 8);
    std::vector<PagerRow> out;
    std::vector<std::string> pieces;
    std::istringstream in(text);
    std::size_t n = 0;
    for (std::string line; std::getline(in, line); ++n) {
        std::replace(line.begin(), line.end(), '\t', ' ');
        std::erase_if(line, [](char c) { return c == '\r'; });
        pieces.clear();
        wrap(std::move(line), width, pieces);
        for (auto& piece : pieces) out.push_back({std::move(piece), n});
    }
    if (lines != nullptr) *lines = n;
    return out;
}

std::vector<std::string> pager_lines(const std::string& text, std::size_t width) {
    std::vector<std::string> out;
    for (auto& row : pager_rows(text, width)) out.push_back(std::move(row.text));
    return out;
}

} // namespace leo::menu
