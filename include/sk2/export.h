/* Symbol visibility for libsk2: everything public carries SK2_EXPORT, the rest stays hidden. */
#ifndef SK2_EXPORT_H
#define SK2_EXPORT_H

#if defined(SK2_STATIC)
#define SK2_EXPORT
#elif defined(_WIN32)
#if defined(SK2_BUILDING)
#define SK2_EXPORT __declspec(dllexport)
#else
#define SK2_EXPORT __declspec(dllimport)
#endif
#else
#define SK2_EXPORT __attribute__((visibility("default")))
#endif

#endif
