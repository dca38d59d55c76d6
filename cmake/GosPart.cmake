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
