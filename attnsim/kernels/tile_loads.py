"""Loading one KV tile's K and V rows for the tile loop (kernels/tiles.py, whose docstring gives the layouts):
contiguous rows, a tile inside one page (paged_rows), a tile of whole pages (page_tile), and the head-dim
columns of a tile padded to a power of two (head_columns: D_VALID)."""

import triton
import triton.language as tl


@triton.jit
def paged_rows(k_pool, v_pool, bt_row_ptr, tile, offs_n, valid, stride_kp, stride_kn, stride_vp, stride_vn,
               BLOCK_N: tl.constexpr, PAGE_SIZE: tl.constexpr):
    """Pointers [BLOCK_N] to the K and to the V row of each token of KV tile `tile` in the page pools
    (k_pool / v_pool: the kv_head's column), through the sequence's block-table row.

    Tile inside one page (BLOCK_N <= PAGE_SIZE): one scalar index load, and the tile's 64-bit base
    (page and first row) one scalar per tile; the rows are the same 32-bit offsets for every tile,
    kept out of the loop. Tile of whole pages (MLA's latent tiles; the decode tile loop loads such tiles
    by page instead, page_tile): one index per token row (the same few entries, from L1) and the
    row in its page, offs_n % PAGE_SIZE, again the same for every tile. Tiles and pages
    are powers of two and tiles start at multiples of BLOCK_N, so no tile straddles a page it does
    not own. Triton's pipeliner issues the index loads a stage before the K/V loads they address
    (resources.PAGED_EXTRA_STAGES); docs/kernels.md counts what is left per tile."""
    if BLOCK_N <= PAGE_SIZE:  # page, row0: scalars
        first = tile * BLOCK_N
        page = tl.load(bt_row_ptr + first // PAGE_SIZE).to(tl.int64)
        row0 = first % PAGE_SIZE
        row = offs_n
    else:  # page: [BLOCK_N]
        page = tl.load(bt_row_ptr + tile * (BLOCK_N // PAGE_SIZE) + offs_n // PAGE_SIZE, mask=valid,
                       other=0).to(tl.int64)
        row0 = 0
        row = offs_n % PAGE_SIZE
    k_rows = k_pool + (page * stride_kp + row0 * stride_kn) + row * stride_kn
    v_rows = v_pool + (page * stride_vp + row0 * stride_vn) + row * stride_vn
    return k_rows, v_rows


@triton.jit
def page_tile(k_pool, v_pool, bt_row_ptr, tile, context, stride_kp, stride_kn, stride_vp, stride_vn,
              BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, PAGE_SIZE: tl.constexpr, MASKED: tl.constexpr = True,
              D_VALID: tl.constexpr = 0):
    """(k, v [BLOCK_N, HEAD_DIM]) of KV tile `tile` when it holds BLOCK_N / PAGE_SIZE whole pages: one
    block-table entry per page ([pages] indices), each page's rows a 64-bit base plus the same 32-bit
    row offsets every tile, loaded as [pages, PAGE_SIZE, HEAD_DIM] and viewed as the tile's rows."""
    PAGES: tl.constexpr = BLOCK_N // PAGE_SIZE
    offs_g = tl.arange(0, PAGES)
    offs_p = tl.arange(0, PAGE_SIZE)
    offs_d = tl.arange(0, HEAD_DIM)
    first = (tile * PAGES + offs_g) * PAGE_SIZE  # [PAGES] first token of each page
    page = tl.load(bt_row_ptr + tile * PAGES + offs_g, mask=first < context, other=0).to(tl.int64)
    valid = tile * BLOCK_N + tl.arange(0, BLOCK_N) < context
    row = tl.arange(0, BLOCK_N) % PAGE_SIZE
    k_base = tl.multiple_of(tl.reshape(tl.broadcast_to((page * stride_kp)[:, None], [PAGES, PAGE_SIZE]), [BLOCK_N]), 16)
    v_base = tl.multiple_of(tl.reshape(tl.broadcast_to((page * stride_vp)[:, None], [PAGES, PAGE_SIZE]), [BLOCK_N]), 16)
    return load_rows(k_pool + (k_base + row * stride_kn), v_pool + (v_base + row * stride_vn), valid, offs_d, MASKED,
                     D_VALID)


@triton.jit
def load_rows(k_rows, v_rows, valid, offs_d, MASKED: tl.constexpr, D_VALID: tl.constexpr = 0):
    """(k, v [N, HEAD_DIM]) of the rows k_rows / v_rows [N] point at: the rows not `valid` [N] read as 0 if
    MASKED, else every row read as it is (a tile every row sees whole: attend_tiles); with D_VALID, the
    columns past it read as 0 (module docstring)."""
    if D_VALID:
        mask = head_columns(valid[:, None], offs_d, D_VALID) if MASKED else offs_d[None, :] < D_VALID
        k = tl.load(k_rows[:, None] + offs_d[None, :], mask=mask, other=0.0)
        v = tl.load(v_rows[:, None] + offs_d[None, :], mask=mask, other=0.0)
    elif MASKED:
        k = tl.load(k_rows[:, None] + offs_d[None, :], mask=valid[:, None], other=0.0)
        v = tl.load(v_rows[:, None] + offs_d[None, :], mask=valid[:, None], other=0.0)
    else:
        k = tl.load(k_rows[:, None] + offs_d[None, :])
        v = tl.load(v_rows[:, None] + offs_d[None, :])
    return k, v


@triton.jit
def head_columns(mask, offs_d, D_VALID: tl.constexpr):
    """`mask` [rows, 1] or [rows, HEAD_DIM] narrowed to the head dim's columns where the tile is wider (D_VALID:
    module docstring); as it is otherwise (the same code as before for a power-of-two head dim)."""
    if D_VALID:
        mask = mask & (offs_d[None, :] < D_VALID)
    return mask
