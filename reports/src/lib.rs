//! kzsim reports: static HTML pages for a run or a sweep.
