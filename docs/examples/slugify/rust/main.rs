//! slugify in Rust (ABI wasi-preview1): the text arrives on stdin, the answer
//! {"slug": …, "length": …} goes to stdout. The standard library's WASI support does the I/O.
use std::io::Read;

fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    let mut dash = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if dash && !slug.is_empty() {
                slug.push('-');
            }
            dash = false;
            slug.push(c.to_ascii_lowercase());
        } else {
            dash = true;
        }
    }
    slug
}

fn main() {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).expect("the input is UTF-8 text");
    let slug = slugify(&text);
    // The slug holds only a-z, 0-9 and '-': nothing in it needs escaping in JSON.
    print!("{{\"slug\":\"{}\",\"length\":{}}}", slug, slug.len());
}
