// nodecaddy's gzip of whole bodies with libdeflate, in libuv's thread pool.
//
// libdeflate compresses a whole buffer at once, faster than zlib at the same level and with output no
// larger (measured on the bench page: level 4 in 1.04 ms against zlib's 1.25 ms, level 6 in 2.0 ms against
// 2.9 ms). Streams (bodies of unknown or large length) stay with node:zlib, which can flush as it goes.
//
// Exports gzip(input: Uint8Array, level: 0-12, callback(err, out: Buffer)), whose input must not change until
// the callback runs (as with node:zlib's asynchronous calls), trim() (below), and version (libdeflate's, as
// built).
#define NAPI_VERSION 8
#include <libdeflate.h>
#include <node_api.h>
#include <pthread.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdint.h>
#include <stdlib.h>

#define MAX_LEVEL 12

// Idle compressors per level, shared by the pool threads: a job takes one (or makes one) and gives it back.
// libdeflate clears its tables at the start of every call, so a kept one is as good as new, while making one
// allocates about 200 KB (level 1), 650 KB (2-9) or 8.8 MB (10-12). At most MAX_IDLE are kept per level (the
// JavaScript side runs at most 8 jobs at once), and trim() frees them all: the JavaScript side calls it after
// a quiet spell, so that the memory of a busy minute goes back.
#define MAX_IDLE 8
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static struct libdeflate_compressor *idle[MAX_LEVEL + 1][MAX_IDLE];
static int idle_count[MAX_LEVEL + 1];

static struct libdeflate_compressor *take(int level) {
  struct libdeflate_compressor *c = NULL;
  pthread_mutex_lock(&idle_lock);
  if (idle_count[level] > 0) c = idle[level][--idle_count[level]];
  pthread_mutex_unlock(&idle_lock);
  return c != NULL ? c : libdeflate_alloc_compressor(level);
}

static void give_back(int level, struct libdeflate_compressor *c) {
  pthread_mutex_lock(&idle_lock);
  if (idle_count[level] < MAX_IDLE) {
    idle[level][idle_count[level]++] = c;
    c = NULL;
  }
  pthread_mutex_unlock(&idle_lock);
  if (c != NULL) libdeflate_free_compressor(c);
}

typedef struct {
  napi_async_work work;
  napi_ref input;
  napi_ref callback;
  const uint8_t *in;
  size_t in_len;
  int level;
  uint8_t *out;
  size_t out_len;
  const char *error;
} job_t;

static void run(napi_env env, void *data) {
  (void)env;
  job_t *job = data;
  struct libdeflate_compressor *c = take(job->level);
  if (c == NULL) {
    job->error = "libdeflate: out of memory for a compressor";
    return;
  }
  size_t bound = libdeflate_gzip_compress_bound(c, job->in_len);
  job->out = malloc(bound);
  if (job->out == NULL) {
    give_back(job->level, c);
    job->error = "libdeflate: out of memory for the output";
    return;
  }
  job->out_len = libdeflate_gzip_compress(c, job->in, job->in_len, job->out, bound);
  give_back(job->level, c);
  // The bound is libdeflate's own worst case, so 0 (did not fit) means a bug, not bad input.
  if (job->out_len == 0) job->error = "libdeflate: the output did not fit its bound";
}

static void done(napi_env env, napi_status status, void *data) {
  job_t *job = data;
  napi_value callback, undefined, argv[2];
  napi_get_reference_value(env, job->callback, &callback);
  napi_get_undefined(env, &undefined);
  napi_get_null(env, &argv[0]);
  argv[1] = undefined;
  if (status != napi_ok && job->error == NULL) job->error = "libdeflate: the job did not run";
  if (job->error == NULL && napi_create_buffer_copy(env, job->out_len, job->out, NULL, &argv[1]) != napi_ok)
    job->error = "libdeflate: could not make the output buffer";
  if (job->error != NULL) {
    napi_value message;
    napi_create_string_utf8(env, job->error, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &argv[0]);
    argv[1] = undefined;
  }
  free(job->out);
  napi_delete_reference(env, job->input);
  napi_delete_reference(env, job->callback);
  napi_delete_async_work(env, job->work);
  free(job);
  napi_call_function(env, undefined, callback, 2, argv, NULL);
}

static napi_value fail(napi_env env, const char *code, const char *message) {
  napi_throw_type_error(env, code, message);
  return NULL;
}

static napi_value out_of_range(napi_env env, const char *message) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
  return NULL;
}

static napi_value gzip(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc != 3) return fail(env, "ERR_INVALID_ARG_COUNT", "gzip(input, level, callback)");

  bool is_typed;
  napi_typedarray_type type;
  size_t length;
  void *bytes;
  if (napi_is_typedarray(env, argv[0], &is_typed) != napi_ok || !is_typed)
    return fail(env, "ERR_INVALID_ARG_TYPE", "input must be a Uint8Array");
  napi_get_typedarray_info(env, argv[0], &type, &length, &bytes, NULL, NULL);
  if (type != napi_uint8_array) return fail(env, "ERR_INVALID_ARG_TYPE", "input must be a Uint8Array");

  int32_t level;
  if (napi_get_value_int32(env, argv[1], &level) != napi_ok || level < 0 || level > MAX_LEVEL)
    return out_of_range(env, "level must be an integer from 0 to 12");

  napi_valuetype cb_type;
  napi_typeof(env, argv[2], &cb_type);
  if (cb_type != napi_function) return fail(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");

  job_t *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "ERR_MEMORY_ALLOCATION_FAILED", "libdeflate: out of memory");
    return NULL;
  }
  job->in = bytes;
  job->in_len = length;
  job->level = level;
  napi_value name;
  napi_create_string_utf8(env, "nodecaddy.gzip", NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, argv[0], 1, &job->input) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &job->callback) != napi_ok ||
      napi_create_async_work(env, NULL, name, run, done, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    napi_throw_error(env, "ERR_NAPI", "libdeflate: could not queue the job");
    return NULL;
  }
  return NULL;
}

// trim(): frees the idle compressors and says how many (those in use go back to the pool and stay until the
// next trim). glibc
// keeps freed blocks in its arenas (after a big block was freed it even raises the size from which it maps
// blocks of their own), so it is asked to give free pages back too; that is a walk over its arenas, at most
// once per quiet spell.
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  int freed = 0;
  pthread_mutex_lock(&idle_lock);
  for (int level = 0; level <= MAX_LEVEL; level++)
    for (; idle_count[level] > 0; freed++) libdeflate_free_compressor(idle[level][--idle_count[level]]);
  pthread_mutex_unlock(&idle_lock);
#ifdef __GLIBC__
  if (freed > 0) malloc_trim(0);
#endif
  napi_value result;
  napi_create_int32(env, freed, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "gzip", NAPI_AUTO_LENGTH, gzip, NULL, &fn);
  napi_set_named_property(env, exports, "gzip", fn);
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  napi_value version;
  napi_create_string_utf8(env, LIBDEFLATE_VERSION_STRING, NAPI_AUTO_LENGTH, &version);
  napi_set_named_property(env, exports, "version", version);
  return exports;
}
