#pragma once
// The libxml2 set-up of the XML targets (fuzz_repomd, fuzz_primary, fuzz_mirrors): libxml2's
// generic error printer is silenced once, before the first input, because the streaming
// reader of leo::repo reports parse errors to its own handler (repo/src/xml.hpp) and the
// printer would only flood the fuzzer's output. It defines LLVMFuzzerInitialize: include it
// in the one source file of an XML target (which links PkgConfig::XML2, fuzz/CMakeLists.txt).

#include <libxml/xmlerror.h>

namespace leo::fuzz {
inline void quiet_xml_error(void*, const char*, ...) {}
} // namespace leo::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    xmlSetGenericErrorFunc(nullptr, leo::fuzz::quiet_xml_error);
    return 0;
}
