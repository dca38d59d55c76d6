# gos_part(NAME [DEPS targets...] [TORCH_TESTS_DEPS targets...])
# One folder, one part: a static library gos_NAME from the folder's sources, a test executable
# gos_NAME_tests from its plain *_test.cpp files, and gos_NAME_torch_tests from *_torch_test.cpp
# (tests that compare against libtorch; kept apart so plain parts build without libtorch headers).
function(gos_part NAME)
  cmake_parse_arguments(PART "" "" "DEPS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cpp)
  file(GLOB torch_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_torch_test.cpp)
  list(REMOVE_ITEM sources ${tests} main.cpp ${CMAKE_CURRENT_SOURCE_DIR}/main.cpp)
  list(REMOVE_ITEM tests ${torch_tests})

  add_library(gos_${NAME} STATIC ${sources})
  target_include_directories(gos_${NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(gos_${NAME} PUBLIC ${PART_DEPS})

  if(tests)
    add_executable(gos_${NAME}_tests ${tests})
    target_link_libraries(gos_${NAME}_tests PRIVATE gos_${NAME} GTest::gtest_main)
    gtest_discover_tests(gos_${NAME}_tests DISCOVERY_TIMEOUT 60)
  endif()
  if(torch_tests)
    add_executable(gos_${NAME}_torch_tests ${torch_tests})
    target_link_libraries(gos_${NAME}_torch_tests PRIVATE gos_${NAME} GTest::gtest_main ${TORCH_LIBRARIES})
    gtest_discover_tests(gos_${NAME}_torch_tests DISCOVERY_TIMEOUT 120)
  endif()
endfunction()

# gos_python_fixtures(TARGET SCRIPT OUTPUT_DIR MODULES "torch, numpy" FOR test_target)
# Test fixtures a Python script writes into the build tree (OUTPUT_DIR/manifest.json last) with
# ${GOS_FIXTURE_PYTHON}; when that Python cannot import MODULES, a status line says which tests are
# skipped and no target is made.
function(gos_python_fixtures TARGET SCRIPT OUTPUT_DIR)
  cmake_parse_arguments(FIXTURES "" "MODULES;FOR;COMMENT" "" ${ARGN})
  execute_process(COMMAND ${GOS_FIXTURE_PYTHON} -c "import ${FIXTURES_MODULES}" RESULT_VARIABLE missing OUTPUT_QUIET ERROR_QUIET)
  if(missing)
    message(STATUS "gos: ${GOS_FIXTURE_PYTHON} cannot import ${FIXTURES_MODULES} (make setup installs them); "
                   "the tests of ${FIXTURES_FOR} on ${TARGET} are skipped")
    return()
  endif()
  add_custom_command(OUTPUT ${OUTPUT_DIR}/manifest.json
                     COMMAND ${GOS_FIXTURE_PYTHON} ${SCRIPT} ${OUTPUT_DIR}
                     DEPENDS ${SCRIPT}
                     COMMENT "${FIXTURES_COMMENT}")
  add_custom_target(${TARGET} DEPENDS ${OUTPUT_DIR}/manifest.json)
  add_dependencies(${FIXTURES_FOR} ${TARGET})
endfunction()
