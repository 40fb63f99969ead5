#pragma once
/// Owning handles for librpm's C types (one header owns them all, STYLE.md).
/// Include only from rpm/src: the rest of the project never sees librpm types.

#include <memory>
#include <type_traits>

#include <rpm/header.h>
#include <rpm/rpmdb.h>
#include <rpm/rpmio.h>
#include <rpm/rpmkeyring.h>
#include <rpm/rpmps.h>
#include <rpm/rpmts.h>

namespace leo::rpm {

struct TsDeleter {
    void operator()(rpmts ts) const noexcept { rpmtsFree(ts); }
};
using TsPtr = std::unique_ptr<std::remove_pointer_t<rpmts>, TsDeleter>;

struct FdDeleter {
    void operator()(FD_t fd) const noexcept { Fclose(fd); }
};
using FdPtr = std::unique_ptr<std::remove_pointer_t<FD_t>, FdDeleter>;

struct KeyringDeleter {
    void operator()(rpmKeyring k) const noexcept { rpmKeyringFree(k); }
};
using KeyringPtr = std::unique_ptr<std::remove_pointer_t<rpmKeyring>, KeyringDeleter>;

struct PubkeyDeleter {
    void operator()(rpmPubkey k) const noexcept { rpmPubkeyFree(k); }
};
using PubkeyPtr = std::unique_ptr<std::remove_pointer_t<rpmPubkey>, PubkeyDeleter>;

struct PsDeleter {
    void operator()(rpmps ps) const noexcept { rpmpsFree(ps); }
};
using PsPtr = std::unique_ptr<std::remove_pointer_t<rpmps>, PsDeleter>;

struct MiDeleter {
    void operator()(rpmdbMatchIterator mi) const noexcept { rpmdbFreeIterator(mi); }
};
using MiPtr = std::unique_ptr<std::remove_pointer_t<rpmdbMatchIterator>, MiDeleter>;

/// A reference-counted Header: links on copy, frees on destruction.
class HeaderRef {
public:
    HeaderRef() = default;
    /// Adopt `h` (takes over the caller's reference).
    explicit HeaderRef(Header h) : m_h(h) {}
    HeaderRef(const HeaderRef& o) : m_h(o.m_h ? headerLink(o.m_h) : nullptr) {}
    HeaderRef(HeaderRef&& o) noexcept : m_h(o.m_h) { o.m_h = nullptr; }
    HeaderRef& operator=(HeaderRef o) noexcept {
        std::swap(m_h, o.m_h);
        return *this;
    }
    ~HeaderRef() {
        if (m_h) headerFree(m_h);
    }
    [[nodiscard]] Header get() const { return m_h; }
    explicit operator bool() const { return m_h != nullptr; }

private:
    Header m_h = nullptr;
};

/// A transaction set for `root` (absolute; "/" for the host) with rpm initialised.
/// Throws leo::RpmError when the root is not usable.
TsPtr make_ts(const char* root);

} // namespace leo::rpm
