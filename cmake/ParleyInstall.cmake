# What `cmake --install` puts where (docs/packaging.md): the public headers, the
# shared library with its soname links, a CMake package (parley::parley) and
# parley.pc. Components split it the way a Debian package would: Runtime
# (libparley.so.0*) and Development (the rest).
include(CMakePackageConfigHelpers)

set(PARLEY_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/parley)

install(TARGETS parley EXPORT parleyTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    COMPONENT Runtime NAMELINK_COMPONENT Development
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Development
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT Runtime)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/parley
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT Development
  FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h")

# The C ABI's header, at the top of the include directory: #include <parley.h>.
install(FILES ${PROJECT_SOURCE_DIR}/bindings/c/include/parley.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT Development)

install(EXPORT parleyTargets
  NAMESPACE parley::
  DESTINATION ${PARLEY_CMAKE_DIR}
  COMPONENT Development)

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/parleyConfig.cmake.in
  ${PROJECT_BINARY_DIR}/parleyConfig.cmake
  INSTALL_DESTINATION ${PARLEY_CMAKE_DIR})
# Same major version, same soname: a newer 0.x satisfies find_package(parley 0.1).
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/parleyConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/parleyConfig.cmake
  ${PROJECT_BINARY_DIR}/parleyConfigVersion.cmake
  DESTINATION ${PARLEY_CMAKE_DIR}
  COMPONENT Development)

# parley.pc names the prefix the tree is installed to, which `cmake --install
# --prefix P` may change after configuring: so the file is finished at install
# time. Under DESTDIR staging it keeps the real prefix (for example /usr).
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(PARLEY_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(PARLEY_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
set(PARLEY_PC_PREFIX "@CMAKE_INSTALL_PREFIX@")  # substituted by the install step
configure_file(${PROJECT_SOURCE_DIR}/cmake/parley.pc.in ${PROJECT_BINARY_DIR}/parley.pc.in @ONLY)
install(CODE "configure_file(\"${PROJECT_BINARY_DIR}/parley.pc.in\"
                             \"${PROJECT_BINARY_DIR}/pkgconfig/parley.pc\" @ONLY)"
  COMPONENT Development)
install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/parley.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
  COMPONENT Development)
