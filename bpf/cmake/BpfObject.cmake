# SPDX-License-Identifier: Apache-2.0
# bpf_object(<name> <source>): compiles <source> with clang -target bpf (CO-RE, BTF) and generates
# <name>.skel.h with `bpftool gen skeleton`; defines target <name>_skel (INTERFACE library whose
# include directory holds the skeleton). Shape borrowed from libbpf-bootstrap's FindBpfObject.cmake.
find_program(REDTAP_BPF_CLANG NAMES clang-19 REQUIRED
             DOC "clang used for BPF objects (Debian package clang-19)")
find_program(REDTAP_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED
             DOC "bpftool for skeleton generation (Debian package bpftool)")

string(TOLOWER ${CMAKE_SYSTEM_PROCESSOR} _redtap_arch)
if(_redtap_arch MATCHES "x86_64|amd64")
  set(REDTAP_BPF_ARCH x86)
elseif(_redtap_arch MATCHES "aarch64|arm64")
  set(REDTAP_BPF_ARCH arm64)
else()
  message(FATAL_ERROR "redtap: unsupported architecture ${CMAKE_SYSTEM_PROCESSOR}")
endif()

set(REDTAP_BPF_CFLAGS -g -O2 -target bpf -D__TARGET_ARCH_${REDTAP_BPF_ARCH} -Wall -Werror
    -Wno-unused-function -mcpu=v3)

function(bpf_object name source)
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/skel)
  set(obj ${out_dir}/${name}.bpf.o)
  set(skel ${out_dir}/${name}.skel.h)
  file(GLOB _deps ${CMAKE_CURRENT_SOURCE_DIR}/lib/*.h ${CMAKE_CURRENT_SOURCE_DIR}/include/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${REDTAP_BPF_CLANG} ${REDTAP_BPF_CFLAGS}
            -I${CMAKE_CURRENT_SOURCE_DIR}/include -I${CMAKE_CURRENT_SOURCE_DIR}/lib
            -I${CMAKE_CURRENT_SOURCE_DIR}/vmlinux/${REDTAP_BPF_ARCH}
            -c ${source} -o ${obj}
    DEPENDS ${source} ${_deps}
    COMMENT "BPF ${name}.bpf.o (clang-19)"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${REDTAP_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${out_dir})
  set_property(TARGET ${name}_skel PROPERTY REDTAP_BPF_OBJECT ${obj})
endfunction()
