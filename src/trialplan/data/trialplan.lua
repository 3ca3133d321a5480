--[[
trialplan's pandoc filter: numbered captions, cross-references and table layout.

1. Tables and figures are numbered in reading order: "Table 3." / "Figure 1."
   before their caption.  A table or figure with an identifier ("tbl:..." or
   "fig:...") can be referred to in the text as @tbl:name or @fig:name, which
   becomes "Table 3" / "Figure 1".  This runs before citeproc, so such
   references never reach the bibliography.
2. Column widths follow the content: each column is at least as wide as its
   longest word (so no word is ever broken across lines) and shares what is
   left in proportion to its longest line.  A table whose words do not fit the
   portrait text width at 9 pt is set in 8 pt; one that still does not fit is
   placed in a landscape section (DOCX).
3. In DOCX the paragraph just before a table is kept with it (no lead-in
   stranded at the foot of a page).
4. trialplan's own figures reach the document through the media bag: pandoc
   runs sandboxed and fetches no image itself, so an image whose source is
   ``figures/NAME.png`` is read here from the folder named by the
   ``trialplan-figure-dir`` metadata field (which trialplan fills with its
   figures only; nothing outside ``figures/`` is ever read).  A figure given
   inline as a data URI instead costs pandoc's Markdown reader a third of a
   second per megabyte and is copied into the DOCX image descriptions.

Widths are estimated from approximate Arial advance widths by character class
for the longest word, and 0.5 em a character for whole lines.  The render check in
tests/render/test_render_check.py confirms in LibreOffice and Chromium that
no word is broken.
]]

local stringify = pandoc.utils.stringify

-- Text width (points) with 2.5 cm margins: the narrower of A4 and Letter, so
-- widths are safe on both (A4 portrait 453, Letter landscape 650).
local PORTRAIT = 453
local LANDSCAPE = 650
local CELL_PAD = 11       -- left + right cell margins (8.5 pt) and slack
local TEXT_EM = 0.50      -- average text, for the preferred (one-line) width
local BOLD = 1.1          -- the header row is bold
local SLACK = 1.06

local counts = {table = 0, figure = 0}
local labels = {}

-- Width of a word in em, from approximate Arial advance widths by character class.
local function char_width(c)
  if c:match("[il%.,;:'!|]") then return 0.28
  elseif c:match("[jtfr%(%)%-/%[%]]") then return 0.36
  elseif c:match("[mw]") then return 0.85
  elseif c:match("[MW]") then return 0.95
  elseif c:match("%u") then return 0.72
  elseif c:match("%d") then return 0.56
  elseif c:match("%l") then return 0.56
  else return 0.62 end
end

local char_widths = {}  -- each character classified once: tables hold thousands of them

local function em_width(word)
  local w = 0
  for _, code in utf8.codes(word) do
    local cw = char_widths[code]
    if not cw then
      cw = char_width(utf8.char(code))
      char_widths[code] = cw
    end
    w = w + cw
  end
  return w
end

local function words_of(text)
  local longest = 0
  for word in text:gmatch("%S+") do
    longest = math.max(longest, em_width(word))
  end
  return longest, utf8.len(text) or #text
end

-- Longest word (em) and longest line (characters) of every column.
local function measure(tbl)
  local ncol = #tbl.colspecs
  local word, line = {}, {}
  for i = 1, ncol do word[i], line[i] = 1, 1 end
  local function visit(row, factor)
    local col = 1
    for _, cell in ipairs(row.cells) do
      local w, l = words_of(stringify(cell.contents))
      if cell.col_span == 1 and col <= ncol then
        word[col] = math.max(word[col], w * factor)
        line[col] = math.max(line[col], l * factor)
      end
      col = col + cell.col_span
    end
  end
  for _, row in ipairs(tbl.head.rows) do visit(row, BOLD) end
  for _, body in ipairs(tbl.bodies) do
    for _, row in ipairs(body.body) do visit(row, 1) end
  end
  return word, line
end

local function sum(xs)
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  return s
end

-- Widths (fractions of the text width) for font size `size` in `avail` points,
-- or nil when the longest words alone do not fit.
local function widths_for(word, line, size, avail)
  local least, want = {}, {}
  for i = 1, #word do
    least[i] = word[i] * SLACK * size + CELL_PAD
    want[i] = math.max(least[i], line[i] * TEXT_EM * size + CELL_PAD)
  end
  if sum(least) > avail then return nil end
  local out = {}
  if sum(want) <= avail then
    local scale = avail / sum(want)
    for i = 1, #want do out[i] = want[i] * scale / avail end
  else
    local spare, extra = avail - sum(least), sum(want) - sum(least)
    for i = 1, #want do
      out[i] = (least[i] + spare * (want[i] - least[i]) / extra) / avail
    end
  end
  return out
end

-- DOCX cell paragraphs get the table text style (9 pt, or 8 pt when small).
local function style_cells(tbl, style)
  local caption = tbl.caption
  local attr = pandoc.Attr("", {}, {{"custom-style", style}})
  -- A Plain block would take pandoc's "Compact" style whatever the Div says.
  local function wrap(block)
    if block.t == "Plain" then block = pandoc.Para(block.content) end
    return pandoc.Div({block}, attr)
  end
  tbl = tbl:walk({Plain = wrap, Para = wrap})
  tbl.caption = caption
  return tbl
end

local function section_break(landscape)
  local size = landscape and '<w:pgSz w:w="16838" w:h="11906" w:orient="landscape"/>'
    or '<w:pgSz w:w="11906" w:h="16838"/>'
  return pandoc.RawBlock("openxml", '<w:p><w:pPr><w:sectPr>' .. size ..
    '<w:pgMar w:top="1417" w:right="1417" w:bottom="1417" w:left="1417" w:header="709"' ..
    ' w:footer="709" w:gutter="0"/></w:sectPr></w:pPr></w:p>')
end

-- The table laid out: widths set; returns the blocks to put in its place.
local function lay_out(tbl)
  local word, line = measure(tbl)
  local landscape, small = false, false
  local widths = widths_for(word, line, 9, PORTRAIT)
  if widths == nil and FORMAT == "docx" then
    widths = widths_for(word, line, 8, PORTRAIT)
    small = widths ~= nil
    if widths == nil then
      landscape = true
      widths = widths_for(word, line, 9, LANDSCAPE)
      if widths == nil then
        small = true
        widths = widths_for(word, line, 8, LANDSCAPE) or widths_for(word, line, 1, LANDSCAPE)
      end
    end
  end
  if FORMAT == "docx" then
    tbl = style_cells(tbl, small and "Table Small" or "Table Text")
  end
  if widths == nil then  -- HTML: the browser wraps at the page width; give proportions
    widths = widths_for(word, line, 1, 1e9)
  end
  for i, spec in ipairs(tbl.colspecs) do
    tbl.colspecs[i] = {spec[1], widths[i]}
  end
  if landscape then
    return {section_break(false), tbl, section_break(true)}
  end
  return {tbl}
end

local function prefix(caption, text)
  local long = caption.long
  local label = pandoc.Strong({pandoc.Str(text .. ".")})
  if #long > 0 and (long[1].t == "Plain" or long[1].t == "Para") then
    long[1].content:insert(1, pandoc.Space())
    long[1].content:insert(1, label)
  else
    long:insert(1, pandoc.Plain({label}))
  end
  caption.long = long
  return caption
end

local function number(block)
  if block.t == "Table" then
    counts.table = counts.table + 1
    local text = "Table " .. counts.table
    if block.identifier ~= "" then labels[block.identifier] = text end
    block.caption = prefix(block.caption, text)
  elseif block.t == "Figure" then
    counts.figure = counts.figure + 1
    local text = "Figure " .. counts.figure
    if block.identifier ~= "" then labels[block.identifier] = text end
    block.caption = prefix(block.caption, text)
  end
  return block
end

local function refer(cite)
  local parts = {}
  for i, c in ipairs(cite.citations) do
    local text = labels[c.id]
    if text == nil then return nil end
    if i > 1 then parts[#parts + 1] = pandoc.Str(", ") end
    parts[#parts + 1] = pandoc.Str(text)
  end
  return parts
end

-- Keep a table's lead-in paragraph on the same page as the table (DOCX).
local function keep_lead_ins(blocks)
  local out = pandoc.Blocks({})
  for i, block in ipairs(blocks) do
    local after = blocks[i + 1]
    if FORMAT == "docx" and block.t == "Para" and after ~= nil and after.t == "Table" then
      out:insert(pandoc.Div({block}, pandoc.Attr("", {}, {{"custom-style", "Table Lead-in"}})))
    else
      out:insert(block)
    end
  end
  return out
end

local function load_figures(doc)
  local dir = doc.meta["trialplan-figure-dir"]
  if not dir then
    return
  end
  dir = stringify(dir)
  doc.meta["trialplan-figure-dir"] = nil  -- a temporary path: not part of the document
  doc.blocks:walk({Image = function(img)
    local src = img.src
    if src:match("^figures/[%w._-]+%.png$") and not src:find("..", 1, true)
        and not pandoc.mediabag.lookup(src) then
      local f = io.open(dir .. "/" .. src, "rb")
      if f then
        pandoc.mediabag.insert(src, "image/png", f:read("a"))
        f:close()
      end
    end
  end})
end

function Pandoc(doc)
  load_figures(doc)
  doc.blocks = doc.blocks:walk({Table = number, Figure = number})
  doc.blocks = doc.blocks:walk({Cite = refer})
  doc.blocks = keep_lead_ins(doc.blocks)
  local out = pandoc.Blocks({})
  for _, block in ipairs(doc.blocks) do
    if block.t == "Table" then
      out:extend(lay_out(block))
    else
      out:insert(block)
    end
  end
  doc.blocks = out
  return doc
end
