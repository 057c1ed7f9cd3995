# Every fuzz target as a regression test in every build, without clang or libFuzzer:
# fuzz_replay_<name> runs tests/fuzz/fuzz_<name>.c's LLVMFuzzerTestOneInput once on each file of
# corpus/<name>/ (the seeds) and crashes/<name>/ (minimized inputs that once crashed, fixed
# since), through replay_main.c. Under `make asan` the sanitizers watch every one.
file(GLOB SK2_FUZZ_REPLAY_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/fuzz_*.c)
foreach(source ${SK2_FUZZ_REPLAY_SOURCES})
  get_filename_component(name ${source} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" short ${name})
  add_executable(replay_${short} ${source} ${CMAKE_CURRENT_LIST_DIR}/replay_main.c)
  target_link_libraries(replay_${short} PRIVATE sk2_static)
  add_test(NAME fuzz_replay_${short}
           COMMAND replay_${short} ${CMAKE_CURRENT_LIST_DIR}/corpus/${short}
                   ${CMAKE_CURRENT_LIST_DIR}/crashes/${short})
  set_tests_properties(fuzz_replay_${short} PROPERTIES TIMEOUT 120 LABELS fuzz_replay)
endforeach()
