# SPDX-License-Identifier: Apache-2.0
# cmake -DINPUT=config/redtap.yaml -DOUTPUT=x.cc -P embed_text.cmake
# Writes a C++ source defining redtap::config::kEmbeddedConfigYaml as the raw text of INPUT.
if(NOT INPUT OR NOT OUTPUT)
  message(FATAL_ERROR "embed_text.cmake: INPUT and OUTPUT are required")
endif()
file(READ "${INPUT}" text)
set(delimiter "redtap_yaml")
string(FIND "${text}" ")${delimiter}\"" collision)
if(NOT collision EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains ')${delimiter}\"', which ends the raw string literal")
endif()
set(content "// Generated from ${INPUT} by embed_text.cmake: do not edit.\n")
string(APPEND content "namespace redtap::config {\n")
string(APPEND content "extern const char kEmbeddedConfigYaml[];\n")
string(APPEND content
       "const char kEmbeddedConfigYaml[] = R\"${delimiter}(${text})${delimiter}\";\n")
string(APPEND content "}  // namespace redtap::config\n")
file(WRITE "${OUTPUT}" "${content}")
