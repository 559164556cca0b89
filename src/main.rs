fn main() {
    println!("mpscope");
}
