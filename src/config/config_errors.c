/* Configuration errors: collected (never printed), each with file:line:column.
 *
 * Errors own copies of the file names they point to, because a failed load
 * frees the configuration (and its file list) before the caller reads them.
 */
#define WEIR_CONFIG_INTERNAL
#include "config/config.h"

char *weir_config_xprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) abort();
    return s;
}

const char *weir_config_error_file(weir_config_errors_t *errs, const char *file)
{
    for (size_t i = 0; i < errs->num_files; i++)
        if (strcmp(errs->files[i], file) == 0) return errs->files[i];
    errs->files = weir_config_grow(errs->files, errs->num_files, sizeof *errs->files);
    errs->files[errs->num_files] = weir_config_xstrdup(file);
    return errs->files[errs->num_files++];
}

static void add(weir_config_ctx_t *ctx, weir_pos_t pos, char *msg)
{
    weir_config_errors_t *errs = ctx->errs;
    errs->items = weir_config_grow(errs->items, errs->count, sizeof *errs->items);
    ctx->err_seq = weir_config_grow(ctx->err_seq, errs->count, sizeof *ctx->err_seq);
    pos.file = weir_config_error_file(errs, pos.file ? pos.file : "");
    errs->items[errs->count].pos = pos;
    errs->items[errs->count].msg = msg;
    ctx->err_seq[errs->count] = errs->count;
    errs->count++;
}

void weir_config_error(weir_config_ctx_t *ctx, weir_pos_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) abort();
    va_end(ap);
    add(ctx, pos, msg);
}

void weir_config_key_error(weir_config_ctx_t *ctx, const weir_config_node_t *n, const char *fmt,
                           ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *detail = NULL;
    if (vasprintf(&detail, fmt, ap) < 0) abort();
    va_end(ap);
    char *msg = ctx->path_len ? weir_config_xprintf("%s: %s", ctx->path, detail)
                              : weir_config_xstrdup(detail);
    free(detail);
    add(ctx, weir_config_pos(ctx, n), msg);
}

/* An error with what it sorts by: the rank of its file in the order files
 * were read (registered), then line, column and insertion order. */
typedef struct {
    weir_config_error_t e;
    size_t seq;
    size_t file;
} sort_item_t;

static size_t file_rank(const weir_config_errors_t *errs, const char *file)
{
    for (size_t i = 0; i < errs->num_files; i++)
        if (errs->files[i] == file) return i;
    return errs->num_files;
}

static int cmp_items(const void *pa, const void *pb)
{
    const sort_item_t *a = pa, *b = pb;
    if (a->file != b->file) return a->file < b->file ? -1 : 1;
    if (a->e.pos.line != b->e.pos.line) return a->e.pos.line < b->e.pos.line ? -1 : 1;
    if (a->e.pos.col != b->e.pos.col) return a->e.pos.col < b->e.pos.col ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void weir_config_errors_sort(weir_config_ctx_t *ctx)
{
    weir_config_errors_t *errs = ctx->errs;
    if (errs->count < 2) return;
    sort_item_t *tmp = weir_config_xalloc(errs->count * sizeof *tmp);
    for (size_t i = 0; i < errs->count; i++) {
        tmp[i].e = errs->items[i];
        tmp[i].seq = ctx->err_seq[i];
        tmp[i].file = file_rank(errs, errs->items[i].pos.file);
    }
    qsort(tmp, errs->count, sizeof *tmp, cmp_items);
    for (size_t i = 0; i < errs->count; i++)
        errs->items[i] = tmp[i].e;
    free(tmp);
}

char *weir_config_error_format(const weir_config_error_t *e)
{
    const char *file = e->pos.file ? e->pos.file : "";
    if (e->pos.line <= 0) return weir_config_xprintf("%s: %s", file, e->msg);
    return weir_config_xprintf("%s:%d:%d: %s", file, e->pos.line, e->pos.col, e->msg);
}

void weir_config_errors_free(weir_config_errors_t *errs)
{
    if (!errs) return;
    for (size_t i = 0; i < errs->count; i++)
        free(errs->items[i].msg);
    free(errs->items);
    for (size_t i = 0; i < errs->num_files; i++)
        free(errs->files[i]);
    free(errs->files);
    memset(errs, 0, sizeof *errs);
}

void weir_config_errors_add(weir_config_errors_t *errs, weir_pos_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = weir_config_xalloc((size_t)(n > 0 ? n : 0) + 1);
    va_start(ap, fmt);
    vsnprintf(msg, (size_t)(n > 0 ? n : 0) + 1, fmt, ap);
    va_end(ap);
    if (pos.file)
        pos.file = weir_config_error_file(errs, pos.file);
    errs->items = weir_config_grow(errs->items, errs->count, sizeof *errs->items);
    errs->items[errs->count].pos = pos;
    errs->items[errs->count].msg = msg;
    errs->count++;
}
